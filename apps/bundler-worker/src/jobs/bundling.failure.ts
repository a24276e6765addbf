import { UnrecoverableError } from 'bullmq';
import { BundleErrorCode, isBundleFormatError } from '@imagemart/bundle-format';
import { BundlingFailureCode } from '@imagemart/contracts';
import { ObjectStoreErrorCode, isObjectStoreError } from '@imagemart/object-store';

/**
 * A failure that no retry can fix (a tampered bundle, an image that is not what the upload
 * declared): the job fails at once, and the image fails with `code` and `message` as the reason
 * the seller reads. Everything else a handler throws is retried with backoff.
 */
export class BundlingFailure extends UnrecoverableError {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message);
    if (options?.cause !== undefined) (this as { cause?: unknown }).cause = options.cause;
  }
}

/**
 * Sorts an error of the bundle format into a permanent failure of the bundle, or a passing one:
 * a part that cannot be read because the store is unreachable is worth another try; a part that
 * is not there, or fails its digest, is not.
 */
export function classifyFormatError(err: unknown): unknown {
  if (!isBundleFormatError(err)) return err;
  if (err.code === BundleErrorCode.PartMissing && !isObjectStoreError(err.cause, ObjectStoreErrorCode.ObjectNotFound)) {
    return err; // the store failed to answer: transient
  }
  if (err.code === BundleErrorCode.OutputFailed) return err;
  return new BundlingFailure(err.code, err.message, { cause: err });
}

/** The code and reason that `bundling.bundle.failed` carries for an error that ended a job for good. */
export function failureOf(err: unknown, attempts: number): { code: string; reason: string } {
  if (err instanceof BundlingFailure) return { code: err.code, reason: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return {
    code: BundlingFailureCode.AttemptsExhausted,
    reason: `bundling failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${message}`,
  };
}

/** Fits the event schema: code 1-64 characters, reason 1-1024. */
export function clampFailure({ code, reason }: { code: string; reason: string }): { code: string; reason: string } {
  const text = reason.trim() || 'bundling failed';
  return { code: (code || 'InternalError').slice(0, 64), reason: text.length > 1024 ? `${text.slice(0, 1023)}…` : text };
}
