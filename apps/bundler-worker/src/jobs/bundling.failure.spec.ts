import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { BundleErrorCode, BundleFormatError } from '@imagemart/bundle-format';
import { BundlingFailureCode } from '@imagemart/contracts';
import { ObjectNotFound } from '@imagemart/object-store';
import { BundlingFailure, clampFailure, classifyFormatError, failureOf } from './bundling.failure.js';

describe('bundling failures', () => {
  it('fail a tampered bundle for good, but retry a part the store could not serve', () => {
    const tampered = classifyFormatError(new BundleFormatError(BundleErrorCode.DigestMismatch, 'part 1 changed'));
    expect(tampered).toBeInstanceOf(UnrecoverableError);
    expect(tampered).toMatchObject({ code: BundleErrorCode.DigestMismatch, message: 'part 1 changed' });

    const missing = new BundleFormatError(BundleErrorCode.PartMissing, 'part 2 cannot be read', {
      cause: new ObjectNotFound('bundles/x/p'),
    });
    expect(classifyFormatError(missing)).toBeInstanceOf(BundlingFailure);

    const unreachable = new BundleFormatError(BundleErrorCode.PartMissing, 'part 2 cannot be read', {
      cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9000'), { code: 'ECONNREFUSED' }),
    });
    expect(classifyFormatError(unreachable)).toBe(unreachable);
    const other = new Error('socket hang up');
    expect(classifyFormatError(other)).toBe(other);
  });

  it('name the attempts when retries ran out, and fit the event schema', () => {
    expect(failureOf(new Error('S3 is down'), 5)).toEqual({
      code: BundlingFailureCode.AttemptsExhausted,
      reason: 'bundling failed after 5 attempts: S3 is down',
    });
    expect(failureOf(new BundlingFailure('SourceSizeMismatch', 'too long'), 1)).toEqual({
      code: 'SourceSizeMismatch',
      reason: 'too long',
    });
    const clamped = clampFailure({ code: 'x'.repeat(100), reason: 'y'.repeat(5000) });
    expect(clamped.code).toHaveLength(64);
    expect(clamped.reason).toHaveLength(1024);
  });
});
