import { createHash } from 'node:crypto';
import { keyFingerprint, loadPublicKey, parseManifest, unbundle, type PlatformKeys } from '@imagemart/bundle-format';
import {
  BundleKeys,
  BundlingFailureCode,
  type BundleVerified,
  type BundlingProgress,
  type VerifyJob,
} from '@imagemart/contracts';
import type { ObjectStore } from '@imagemart/object-store';
import type { Logger } from '@imagemart/observability';
import { BundlingFailure, classifyFormatError } from '../jobs/bundling.failure.js';
import { readObject } from '../storage/bundle-storage.js';
import type { SigningKeyCheck } from './signing-key.check.js';

export interface VerifyDeps {
  store: ObjectStore;
  keys: PlatformKeys;
  logger: Logger;
  /** Parts fetched ahead (unbundle()'s concurrency). */
  partConcurrency?: number;
  /** Whether a seller's signing key is still active; required to verify a seller-made bundle. */
  signingKeys?: SigningKeyCheck;
}

export interface VerifyRunOptions {
  onProgress?: (progress: BundlingProgress) => Promise<void> | void;
  signal?: AbortSignal;
}

/** Image bytes between two progress reports, at most: about one part's worth. */
const PROGRESS_STEP = 8 * 1024 * 1024;

/**
 * The verify job's work: reads the manifest and then every part back from the store and runs
 * unbundle(), which checks the signature (against the platform's signing key, or the seller's key
 * the job names), every part's size and digest, decrypts, decompresses and proves the SHA-256 of
 * the original image. Returns the `bundling.bundle.verified` payload. A bundle that fails a check
 * is a BundlingFailure with the format's code; a store that does not answer is thrown as is
 * (retried).
 */
export async function verifyBundle(
  deps: VerifyDeps,
  job: VerifyJob,
  options: VerifyRunOptions = {},
): Promise<BundleVerified> {
  const { store, keys } = deps;
  const xml = await readObject(store, job.manifestKey);
  if (xml === undefined) {
    throw new BundlingFailure(
      BundlingFailureCode.ManifestMissing,
      `the manifest ${job.manifestKey} is not in the object store`,
    );
  }
  let signerPublicKey = keys.signing.publicKey;
  if (job.signerPublicKeyPem !== undefined) {
    try {
      signerPublicKey = loadPublicKey(job.signerPublicKeyPem);
    } catch (err) {
      throw classifyFormatError(err);
    }
  }
  const signerKeyId = keyFingerprint(signerPublicKey);
  if (job.signerPublicKeyPem !== undefined) await checkSellerKey(deps, job, xml, signerKeyId);

  let total = 0;
  let reported = 0;
  let lastReport = Promise.resolve();
  const report = (bytesDone: number) =>
    options.onProgress?.({
      phase: 'verifying',
      bytesDone,
      bytesTotal: total,
      percent: total === 0 ? 100 : Math.min(100, Math.floor((bytesDone / total) * 100)),
    });

  let result;
  try {
    // Parsed once more inside unbundle(); here only for the size that progress is measured against.
    total = parseManifest(xml).image.size;
    result = await unbundle(xml, {
      readPart: (part) => store.get(BundleKeys.part(job.manifestKey, part.filename)),
      privateKey: keys.wrapping.privateKey,
      signerPublicKey,
      concurrency: deps.partConcurrency,
      signal: options.signal,
      onProgress: (bytes) => {
        if (total === 0 || bytes - reported < PROGRESS_STEP) return;
        reported = bytes;
        // Reports go out one at a time, in order; a slow one does not hold the pipeline.
        lastReport = lastReport.then(() => report(bytes)).catch(() => undefined);
      },
    });
  } catch (err) {
    throw classifyFormatError(err);
  }
  await lastReport;
  await report(result.size);

  const image = result.manifest.image;
  if (job.expected && (job.expected.size !== image.size || job.expected.sha256 !== image.digest)) {
    throw new BundlingFailure(
      BundlingFailureCode.UnexpectedImage,
      `the bundle holds an image of ${image.size} bytes with SHA-256 ${image.digest}, but one of ${job.expected.size} bytes with SHA-256 ${job.expected.sha256} was expected`,
    );
  }
  return {
    imageId: job.imageId,
    manifestLocation: job.manifestKey,
    imageSize: image.size,
    bundledSize: image.bundledSize,
    imageDigest: image.digest,
    // What was verified, for the catalog to pin: these bytes, and the key that signed them.
    manifestDigest: createHash('sha256').update(xml).digest('hex'),
    signerKeyId,
  };
}

/**
 * A seller-made bundle verifies only while its signing key is an active registered key of the
 * seller: a key revoked after the upload was opened (or no longer registered) fails the image
 * with SigningKeyRevoked. The seller is the job's `signerAccountId`, else the manifest's user.
 */
async function checkSellerKey(deps: VerifyDeps, job: VerifyJob, xml: Buffer, keyId: string): Promise<void> {
  if (!deps.signingKeys) throw new Error('this worker cannot check seller signing keys (no permission service client)');
  let accountId = job.signerAccountId;
  if (accountId === undefined) {
    try {
      accountId = parseManifest(xml).image.user;
    } catch (err) {
      throw classifyFormatError(err);
    }
  }
  const status = await deps.signingKeys.status(accountId, keyId);
  if (status !== 'active') {
    throw new BundlingFailure(
      BundlingFailureCode.SigningKeyRevoked,
      status === 'revoked'
        ? `the manifest is signed with the key ${keyId}, which account ${accountId} has revoked`
        : `the manifest is signed with the key ${keyId}, which is not a registered signing key of account ${accountId}`,
    );
  }
}
