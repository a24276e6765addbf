import { describe, expect, it } from 'vitest';
import { acceptClientRequestId, createRequestId, requestIdsFromMetadata } from './request-context.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('request ids', () => {
  it("keeps a client's id only when it is safe to log and echo", () => {
    expect(acceptClientRequestId('retry-17.a:b_c')).toBe('retry-17.a:b_c');
    for (const bad of ['', 'a b', 'x'.repeat(65), '../x', 'a\u0000', 7, undefined, ['a']])
      expect(acceptClientRequestId(bad)).toBeUndefined();
  });

  it("makes the platform's own: random, or derived from the client's id and the credentials together", () => {
    expect(createRequestId()).toMatch(UUID);
    expect(createRequestId()).not.toBe(createRequestId());
    expect(createRequestId('retry-1')).not.toBe(createRequestId('retry-1'));
    const derived = createRequestId('retry-1', 'key-hash-a');
    expect(derived).toMatch(UUID);
    expect(derived[14]).toBe('8'); // version 8: name-based
    expect(createRequestId('retry-1', 'key-hash-a')).toBe(derived);
    expect(createRequestId('retry-1', 'key-hash-b')).not.toBe(derived);
    expect(createRequestId('retry-2', 'key-hash-a')).not.toBe(derived);
    expect(derived).not.toContain('retry-1');
  });

  it('reads both ids from RPC metadata, replacing an unusable platform id and dropping an unusable client one', () => {
    expect(requestIdsFromMetadata({ requestId: 'r-1', clientRequestId: 'c-1' })).toEqual({
      requestId: 'r-1',
      clientRequestId: 'c-1',
    });
    const odd = requestIdsFromMetadata({ requestId: 'bad id', clientRequestId: 'bad id' });
    expect(odd.requestId).toMatch(UUID);
    expect(odd).not.toHaveProperty('clientRequestId');
  });
});
