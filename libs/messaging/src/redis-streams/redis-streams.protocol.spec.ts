import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@imagemart/contracts';
import {
  decodeRequest,
  encodeRequest,
  rpcReplyKey,
  rpcStreamKey,
  toErrorBody,
} from './redis-streams.protocol.js';

describe('Redis Streams wire format', () => {
  it('names the keys under the prefix', () => {
    expect(rpcStreamKey('imagemart', 'catalog')).toBe('imagemart:rpc:catalog');
    expect(rpcReplyKey('imagemart', undefined, 'abc')).toBe('imagemart:rpc:reply:abc');
    expect(rpcReplyKey('imagemart', 'catalog', 'abc')).toBe('imagemart:rpc:reply:catalog:abc');
  });

  it('decodes what it encodes', () => {
    const request = {
      id: 'r1',
      pattern: 'catalog.image.get',
      data: { imageId: 'ami-1', n: [1, 2] },
      replyTo: 'p:rpc:reply:x',
      deadline: 1_700_000_000_000,
      metadata: { requestId: 'req-1' },
    };
    expect(decodeRequest(encodeRequest(request))).toEqual({
      ok: true,
      request: { ...request, dataJson: JSON.stringify(request.data), assertion: undefined },
    });
  });

  it('carries the caller assertion made from the data field exactly as encoded', () => {
    const seen: string[] = [];
    const fields = encodeRequest({ id: 'r4', pattern: 'p', data: { a: 'é', b: [1] }, metadata: {} }, (json) => {
      seen.push(json);
      return `signed:${json.length}`;
    });
    const decoded = decodeRequest(fields);
    expect(decoded.ok && decoded.request.dataJson).toBe(seen[0]);
    expect(decoded.ok && decoded.request.assertion).toBe(`signed:${seen[0].length}`);
  });

  it('encodes an event without replyTo or deadline', () => {
    const fields = encodeRequest({ id: 'e1', pattern: 'x.happened', data: {}, metadata: {} });
    expect(fields).not.toContain('replyTo');
    expect(fields).not.toContain('deadline');
    expect(decodeRequest(fields)).toMatchObject({
      ok: true,
      request: { replyTo: undefined, deadline: undefined },
    });
  });

  it('refuses a broken entry but keeps what it needs to answer', () => {
    expect(decodeRequest(null)).toEqual({ ok: false });
    expect(decodeRequest(['id', 'r2', 'pattern', 'p', 'data', '{not json', 'replyTo', 'k'])).toEqual({
      ok: false,
      id: 'r2',
      replyTo: 'k',
    });
    expect(decodeRequest(['id', 'r3', 'pattern', 'p', 'data', '1', 'metadata', '{"n":1}'])).toMatchObject({
      ok: false,
    });
  });

  it('passes an ErrorBody on and hides anything else', () => {
    const body = { code: ErrorCode.IncorrectState, detail: 'image is pending' };
    expect(toErrorBody(body)).toBe(body);
    for (const other of [
      new Error('boom'),
      { status: 'error', message: 'Internal server error' },
      'text',
      undefined,
    ]) {
      expect(toErrorBody(other)).toEqual({ code: ErrorCode.InternalError, detail: 'Internal error' });
    }
  });
});
