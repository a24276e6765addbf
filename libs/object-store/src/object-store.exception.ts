/**
 * Every error an ObjectStore raises on purpose carries one of these codes. Callers match on the
 * code (or the class), never on the message; a code is never renamed or reused.
 */
export const ObjectStoreErrorCode = {
  /** get() of a key that holds no object. */
  ObjectNotFound: 'ObjectNotFound',
  /** A key or prefix outside the key rules (see object-key.ts). */
  InvalidObjectKey: 'InvalidObjectKey',
  /** A bad option: metadata, content type, list limit or cursor, part size. */
  InvalidArgument: 'InvalidArgument',
  /** A range that starts at or past the end of the object. */
  InvalidRange: 'InvalidRange',
  /** The body was longer or shorter than the declared `contentLength`; nothing was stored. */
  ContentLengthMismatch: 'ContentLengthMismatch',
  /**
   * Filesystem driver only: the key's path is blocked by something that is not a plain directory
   * (an object `a` when writing `a/b`, a directory when writing `a`, or a symlink on the way).
   */
  ObjectKeyConflict: 'ObjectKeyConflict',
  /** S3 only: a batch delete reported keys it could not delete. */
  DeleteFailed: 'DeleteFailed',
} as const;

export type ObjectStoreErrorCode = (typeof ObjectStoreErrorCode)[keyof typeof ObjectStoreErrorCode];

export class ObjectStoreError extends Error {
  override readonly name: string = 'ObjectStoreError';

  constructor(
    readonly code: ObjectStoreErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export class ObjectNotFound extends ObjectStoreError {
  override readonly name = 'ObjectNotFound';

  constructor(
    readonly key: string,
    options?: ErrorOptions,
  ) {
    super(ObjectStoreErrorCode.ObjectNotFound, `No object at key ${JSON.stringify(key)}`, options);
  }
}

export class InvalidObjectKey extends ObjectStoreError {
  override readonly name = 'InvalidObjectKey';

  constructor(key: unknown, reason: string) {
    super(ObjectStoreErrorCode.InvalidObjectKey, `Invalid object key ${describe(key)}: ${reason}`);
  }
}

export function isObjectStoreError(err: unknown, code?: ObjectStoreErrorCode): err is ObjectStoreError {
  return err instanceof ObjectStoreError && (code === undefined || err.code === code);
}

// Keys in messages are cut short: a refused key may be 100 KB of junk.
function describe(key: unknown): string {
  if (typeof key !== 'string') return `(${typeof key})`;
  const shown = JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key);
  return key.length > 80 ? `${shown} (${key.length} chars)` : shown;
}
