// Checks and stream helpers that every driver shares, so that all of them accept and refuse the same things.
import { isValidObjectKey } from './object-key.js';
import { MAX_LIST_LIMIT, type GetOptions, type ObjectBody, type PutOptions } from './object-store.js';
import { ObjectStoreError, ObjectStoreErrorCode } from './object-store.exception.js';

const MAX_METADATA_BYTES = 2048;
const METADATA_NAME = /^[a-z0-9][a-z0-9-]*$/;
// Printable ASCII with no space at either end: what an HTTP header carries unchanged.
const HEADER_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/;

const invalid = (message: string) => new ObjectStoreError(ObjectStoreErrorCode.InvalidArgument, message);

export function checkPutOptions(options: PutOptions): void {
  const { contentLength, contentType, metadata } = options;
  if (contentLength !== undefined && !(Number.isSafeInteger(contentLength) && contentLength >= 0)) {
    throw invalid(`contentLength must be a non-negative integer, got ${String(contentLength)}`);
  }
  if (
    contentType !== undefined &&
    (contentType === '' || contentType.length > 255 || !HEADER_VALUE.test(contentType))
  ) {
    throw invalid('contentType must be 1-255 printable ASCII characters');
  }
  let bytes = 0;
  for (const [name, value] of Object.entries(metadata ?? {})) {
    if (!METADATA_NAME.test(name))
      throw invalid(`metadata name ${JSON.stringify(name)} must match [a-z0-9][a-z0-9-]*`);
    if (typeof value !== 'string' || !HEADER_VALUE.test(value)) {
      throw invalid(`metadata ${name} must be printable ASCII without surrounding spaces`);
    }
    bytes += name.length + value.length;
  }
  if (bytes > MAX_METADATA_BYTES)
    throw invalid(`metadata is ${bytes} bytes, more than ${MAX_METADATA_BYTES}`);
}

export function checkRange({ start, end }: GetOptions): void {
  const ok = (n: number | undefined) => n === undefined || (Number.isSafeInteger(n) && n >= 0);
  if (!ok(start) || !ok(end) || (end !== undefined && end < (start ?? 0))) {
    throw invalid(`bad range start=${String(start)} end=${String(end)}`);
  }
}

export function listLimit(limit: number | undefined): number {
  if (limit === undefined) return MAX_LIST_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw invalid(`list limit must be an integer in 1..${MAX_LIST_LIMIT}`);
  }
  return limit;
}

/** Byte order, which is S3's listing order (keys are ASCII, so UTF-16 order is the same). */
export const compareKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The body as Buffers, counted: throws ContentLengthMismatch as soon as the body runs past the
 * declared length, or at its end if it falls short. Leaving the loop early destroys the stream.
 */
export async function* bodyChunks(body: ObjectBody, contentLength?: number): AsyncGenerator<Buffer> {
  let size = 0;
  for await (const chunk of Buffer.isBuffer(body) ? [body] : body) {
    const buffer: Buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array | string);
    size += buffer.length;
    // Refused as soon as it runs over, not after storing gigabytes.
    if (contentLength !== undefined && size > contentLength)
      checkContentLength(size, contentLength, 'at least ');
    yield buffer;
  }
  checkContentLength(size, contentLength);
}

export function checkContentLength(size: number, contentLength: number | undefined, qualifier = ''): void {
  if (contentLength !== undefined && size !== contentLength) {
    throw new ObjectStoreError(
      ObjectStoreErrorCode.ContentLengthMismatch,
      `body has ${qualifier}${size} bytes, ${contentLength} declared`,
    );
  }
}

/** Releases a caller's stream that a failed put will not read to the end (no error event: it may have no listener). */
export function discardBody(body: ObjectBody): void {
  if (!Buffer.isBuffer(body) && !body.destroyed) body.destroy();
}

/** A cursor is the last key of the previous page. */
export function checkCursor(cursor: string | undefined): void {
  if (cursor !== undefined && !isValidObjectKey(cursor)) throw invalid('bad list cursor');
}
