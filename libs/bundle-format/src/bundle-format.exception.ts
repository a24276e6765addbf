/**
 * Stable codes of every failure of the bundle format. Callers (the verify job, the seller CLI)
 * match on them and show the message to the seller, so a code is never renamed or reused.
 */
export const BundleErrorCode = {
  /** A bundle() option or manifest field given by the caller is invalid. */
  InvalidParameter: 'InvalidParameter',
  /** A key has the wrong type or size, or its PEM cannot be read. */
  InvalidKey: 'InvalidKey',
  ManifestTooLarge: 'ManifestTooLarge',
  ManifestMalformed: 'ManifestMalformed',
  UnsupportedVersion: 'UnsupportedVersion',
  UnsupportedAlgorithm: 'UnsupportedAlgorithm',
  SignatureInvalid: 'SignatureInvalid',
  KeyUnwrapFailed: 'KeyUnwrapFailed',
  PartMissing: 'PartMissing',
  PartSizeMismatch: 'PartSizeMismatch',
  DigestMismatch: 'DigestMismatch',
  DecryptionFailed: 'DecryptionFailed',
  DecompressionFailed: 'DecompressionFailed',
  ImageSizeMismatch: 'ImageSizeMismatch',
  ImageDigestMismatch: 'ImageDigestMismatch',
  CompressionFailed: 'CompressionFailed',
  OutputFailed: 'OutputFailed',
} as const;

export type BundleErrorCode = (typeof BundleErrorCode)[keyof typeof BundleErrorCode];

export interface BundleFormatErrorOptions {
  cause?: unknown;
  /** The part the failure is about, when there is one. */
  partIndex?: number;
}

/** The one error type of this library: a stable `code` and a message a seller can read. */
export class BundleFormatError extends Error {
  override readonly name = 'BundleFormatError';
  readonly code: BundleErrorCode;
  readonly partIndex?: number;

  constructor(code: BundleErrorCode, message: string, options: BundleFormatErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.partIndex !== undefined) this.partIndex = options.partIndex;
  }
}

export function isBundleFormatError(error: unknown, code?: BundleErrorCode): error is BundleFormatError {
  return error instanceof BundleFormatError && (code === undefined || error.code === code);
}

/** A short description of an unknown thrown value, for messages. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
