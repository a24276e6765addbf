import { UnrecoverableError, type Job } from 'bullmq';
import type { z } from 'zod';
import type { PlatformKeys } from '@imagemart/bundle-format';
import {
  BUNDLING_JOB_SCHEMAS,
  BundlingFailureCode,
  BundlingJobName,
  bundlingJobId,
  imageIdSchema,
  type BundlingProgress,
  type VerifyJobData,
} from '@imagemart/contracts';
import type { ObjectStore } from '@imagemart/object-store';
import type { Logger } from '@imagemart/observability';
import { bundleImage, deleteSource } from '../bundle/bundle.handler.js';
import { deleteBundle } from '../delete/delete.handler.js';
import type { BundleOutcomePublisher } from '../outcome/bundle-outcome.publisher.js';
import type { SigningKeyCheck } from '../verify/signing-key.check.js';
import { verifyBundle } from '../verify/verify.handler.js';
import { BundlingFailure, failureOf } from './bundling.failure.js';
import type { BundlingJobHandler } from './bundling.processor.js';

export interface BundlingHandlerDeps {
  store: ObjectStore;
  keys: PlatformKeys;
  logger: Logger;
  outcomes: BundleOutcomePublisher;
  /** Adds a job to the bundling queue (with the queue's default retries) under a fixed id. */
  enqueue: (name: BundlingJobName, data: unknown, jobId: string) => Promise<unknown>;
  /** Part uploads (bundle) and part reads ahead (verify) in flight at once. */
  partConcurrency?: number;
  /** Whether a seller's signing key is still active (verify of a seller-made bundle). */
  signingKeys?: SigningKeyCheck;
}

function parse<S extends z.ZodType>(schema: S, job: Job): z.output<S> {
  const parsed = schema.safeParse(job.data);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(data)'}: ${i.message}`).join('; ');
    throw new BundlingFailure(BundlingFailureCode.InvalidJob, `the ${job.name} job's data is invalid: ${detail}`);
  }
  return parsed.data;
}

/** Whether this failure ends the job: unrecoverable, or its last attempt. */
export function isFinalFailure(job: Job, err: unknown): boolean {
  return err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

/** The image a job is about, when its data names a valid one. */
export function imageIdOf(job: Job): string | undefined {
  const parsed = imageIdSchema.safeParse((job.data as { imageId?: unknown } | null)?.imageId);
  return parsed.success ? parsed.data : undefined;
}

const requestIdOf = (job: Job) => {
  const id = (job.data as { requestId?: unknown } | null)?.requestId;
  return typeof id === 'string' ? id : undefined;
};

/**
 * The handlers of the bundling queue. A bundle or verify job that fails for good (a permanent
 * failure, or its last attempt) publishes `bundling.bundle.failed` before it fails, so no image
 * stays pending for ever; one that lost its lock publishes nothing (another worker has it).
 */
export function createBundlingHandlers(deps: BundlingHandlerDeps): Map<BundlingJobName, BundlingJobHandler> {
  const { logger, outcomes } = deps;
  const progressOf = (job: Job) => (p: BundlingProgress) => job.updateProgress({ ...p });

  const reportingFailure =
    (work: BundlingJobHandler): BundlingJobHandler =>
    async (job, signal) => {
      try {
        return await work(job, signal);
      } catch (err) {
        const imageId = imageIdOf(job);
        if (signal?.aborted || imageId === undefined || !isFinalFailure(job, err)) throw err;
        const failure = failureOf(err, job.attemptsMade + 1);
        logger.warn({ jobId: job.id, imageId, code: failure.code, reason: failure.reason }, 'bundling failed for good');
        await outcomes.failed(imageId, failure, requestIdOf(job));
        throw err;
      }
    };

  return new Map<BundlingJobName, BundlingJobHandler>([
    [
      BundlingJobName.bundle,
      reportingFailure(async (job, signal) => {
        const data = parse(BUNDLING_JOB_SCHEMAS.bundle, job);
        let stored;
        try {
          stored = await bundleImage(
            { store: deps.store, keys: deps.keys, logger, partConcurrency: deps.partConcurrency },
            data,
            { onProgress: progressOf(job), signal },
          );
        } catch (err) {
          // An upload that can never become this image's bundle is not kept either: no orphans.
          if (data.source.deleteWhenBundled && !signal?.aborted && isFinalFailure(job, err)) {
            await deleteSource(deps.store, data.source, logger, data.imageId);
          }
          throw err;
        }
        logger.info(
          { imageId: data.imageId, parts: stored.parts, imageSize: stored.imageSize, bundledSize: stored.bundledSize },
          'bundle stored',
        );
        const verify: VerifyJobData = {
          imageId: data.imageId,
          manifestKey: stored.manifestKey,
          expected: { size: data.declaredSize, sha256: data.declaredSha256 },
          ...(data.requestId ? { requestId: data.requestId } : {}),
        };
        await deps.enqueue(BundlingJobName.verify, verify, bundlingJobId(BundlingJobName.verify, data.imageId));
        return stored;
      }),
    ],
    [
      BundlingJobName.verify,
      reportingFailure(async (job, signal) => {
        const data = parse(BUNDLING_JOB_SCHEMAS.verify, job);
        const verified = await verifyBundle(
          { store: deps.store, keys: deps.keys, logger, partConcurrency: deps.partConcurrency, signingKeys: deps.signingKeys },
          data,
          { onProgress: progressOf(job), signal },
        );
        await outcomes.verified(verified, data.requestId);
        logger.info({ imageId: data.imageId, imageSize: verified.imageSize }, 'bundle verified');
        return verified;
      }),
    ],
    [
      BundlingJobName.delete,
      async (job) => {
        const data = parse(BUNDLING_JOB_SCHEMAS.delete, job);
        await job.updateProgress({ phase: 'deleting', bytesDone: 0, bytesTotal: 0, percent: 0 });
        return deleteBundle({ store: deps.store, logger }, data);
      },
    ],
  ]);
}
