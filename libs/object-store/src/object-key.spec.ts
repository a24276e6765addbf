import { describe, expect, it } from 'vitest';
import { partFilenameProblem } from '@imagemart/contracts';
import { BAD_KEYS, BAD_PREFIXES } from './object-store-contract.fixture.js';
import { assertValidPrefix, isValidObjectKey, MAX_OBJECT_KEY_BYTES, parseObjectKey } from './object-key.js';
import { InvalidObjectKey } from './object-store.exception.js';

describe('object keys', () => {
  it.each(['a', 'bundles/ami-0123/part-0001', '.hidden', 'a..b/c', '...', 'A_Z-0.9/x', 'k'.repeat(200)])(
    'accepts %j',
    (key) => {
      expect(parseObjectKey(key)).toEqual(key.split('/'));
    },
  );

  it('accepts exactly 1024 bytes', () => {
    const key = `${Array.from({ length: 5 }, () => 'k'.repeat(200)).join('/')}/${'k'.repeat(19)}`;
    expect(key.length).toBe(MAX_OBJECT_KEY_BYTES);
    expect(isValidObjectKey(key)).toBe(true);
    expect(isValidObjectKey(`${key}k`)).toBe(false);
  });

  it.each(BAD_KEYS.map((key) => [JSON.stringify(key).slice(0, 40), key]))(
    'refuses %s with a typed error',
    (_, key) => {
      expect(() => parseObjectKey(key)).toThrow(InvalidObjectKey);
      expect(isValidObjectKey(key)).toBe(false);
    },
  );

  it.each([undefined, null, 42, ['a']])('refuses the non-string %j', (key) => {
    expect(() => parseObjectKey(key)).toThrow(expect.objectContaining({ code: 'InvalidObjectKey' }));
  });

  it('keeps refused keys short in the message', () => {
    expect(() => parseObjectKey('x'.repeat(100_000))).toThrow(/\(100000 chars\)/);
  });

  it.each(['', 'a', 'a/', 'a/b', 'a/.', 'a/..', '.', '..', 'a/b-'])('accepts the prefix %j', (prefix) => {
    expect(() => assertValidPrefix(prefix)).not.toThrow();
  });

  it.each(BAD_PREFIXES)('refuses the prefix %j', (prefix) => {
    expect(() => assertValidPrefix(prefix)).toThrow(InvalidObjectKey);
  });

  it('refuses every segment the bundle format refuses as a part name, with the same rule', () => {
    for (const name of ['.', '..', 'p'.repeat(201)]) {
      expect(partFilenameProblem(name)).toBeDefined();
      expect(isValidObjectKey(`bundles/ami-1/${name}`)).toBe(false);
    }
    // And every part name the format allows is a key the store can hold.
    for (const name of ['p'.repeat(200), 'image.part.0000', '.x']) {
      expect(partFilenameProblem(name)).toBeUndefined();
      expect(isValidObjectKey(`bundles/ami-1/${name}`)).toBe(true);
    }
  });

  it('refuses the empty prefix where asked to', () => {
    expect(() => assertValidPrefix('', { allowEmpty: false })).toThrow(/empty prefix/);
  });
});
