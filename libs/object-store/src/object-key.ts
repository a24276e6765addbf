import { keySegmentProblem, MAX_KEY_SEGMENT_LENGTH } from '@imagemart/contracts';
import { InvalidObjectKey } from './object-store.exception.js';

/** Longest key, in bytes (S3's own limit). Keys are ASCII, so bytes and characters agree. */
export const MAX_OBJECT_KEY_BYTES = 1024;

/**
 * Longest segment (the contracts' MAX_KEY_SEGMENT_LENGTH): it keeps every key a legal file name
 * with room for the filesystem driver's suffixes. The segment rule itself is keySegmentProblem of
 * the contracts, the same function that rules a bundle's part names, so a part the format allows
 * is a part the store can hold.
 */
export const MAX_KEY_SEGMENT_BYTES = MAX_KEY_SEGMENT_LENGTH;

/**
 * The one place the key rules live, for every driver: `/`-separated segments of
 * `[A-Za-z0-9._-]`, no empty, `.` or `..` segment, no leading or trailing `/`, at most 1024 bytes
 * (200 a segment).
 * A key that passes is a safe relative path on any filesystem and needs no escaping in S3, so no
 * traversal, NUL, backslash or look-alike Unicode ever reaches a driver. Returns the segments.
 */
export function parseObjectKey(key: unknown): string[] {
  if (typeof key !== 'string') throw new InvalidObjectKey(key, 'not a string');
  if (key.length === 0) throw new InvalidObjectKey(key, 'empty');
  if (key.length > MAX_OBJECT_KEY_BYTES)
    throw new InvalidObjectKey(key, `longer than ${MAX_OBJECT_KEY_BYTES} bytes`);
  const segments = key.split('/');
  for (const segment of segments) {
    if (segment === '') throw new InvalidObjectKey(key, 'empty segment (leading, trailing or double "/")');
    const problem = keySegmentProblem(segment);
    if (problem) throw new InvalidObjectKey(key, `a segment ${problem}`);
  }
  return segments;
}

export function isValidObjectKey(key: unknown): key is string {
  try {
    parseObjectKey(key);
    return true;
  } catch {
    return false;
  }
}

/** Whether a single path segment could be part of a key (drivers use it to skip their own files). */
export function isValidKeySegment(segment: string): boolean {
  return keySegmentProblem(segment) === undefined;
}

/**
 * A list/delete prefix is a plain string prefix of keys, as in S3: `''` (everything, where
 * allowed), `bundles/` or `bundles/ab`. It must be the start of some valid key.
 */
export function assertValidPrefix(prefix: unknown, { allowEmpty = true } = {}): asserts prefix is string {
  if (typeof prefix !== 'string') throw new InvalidObjectKey(prefix, 'prefix is not a string');
  if (prefix === '') {
    if (allowEmpty) return;
    // Wiping a whole store is not something a missing variable should be able to do.
    throw new InvalidObjectKey(prefix, 'empty prefix: deleting everything is refused');
  }
  // "a/" and "a/b" are starts of the valid key "a/bx"; a prefix ending in "/." or "/.." is too
  // (of "a/.x"), and is only ever compared as a string, never resolved as a path.
  const completed = prefix.endsWith('/') ? `${prefix}x` : prefix.replace(/(^|\/)\.{1,2}$/, '$1x');
  try {
    parseObjectKey(completed);
  } catch {
    throw new InvalidObjectKey(prefix, 'not the start of a valid key');
  }
}
