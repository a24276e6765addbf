import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { baseConfigSchema, loadConfig } from '@imagemart/config';
import { BundlingJobName, EventQueue, QueueName, bundlingJobId, heartbeatKey } from '@imagemart/contracts';
import { publishPlatformKeys } from './keys/platform-keys.publisher.js';
import { storeSellerManifest } from './upload/seller-bundle.js';
import { OutboxRelay } from '@imagemart/database';
import {
  Heartbeat,
  QueueRegistry,
  checkRedis,
  connectDatabase,
  createWorker,
  processIdentity,
  startDomainEventConsumer,
} from '@imagemart/messaging';
import { createObjectStore, objectStoreConfigFromEnv, objectStoreEnvSchema } from '@imagemart/object-store';
import { createLogger, startMetricsServer, type Logger } from '@imagemart/observability';
import { createBundlingProcessor, type BundlingJobHandler } from './jobs/bundling.processor.js';
import { createBundlingHandlers, imageIdOf } from './jobs/bundling.handlers.js';
import { failureOf } from './jobs/bundling.failure.js';
import { loadPlatformKeys, platformKeysEnvSchema } from './keys/platform-keys.js';
import { BundleOutcomePublisher } from './outcome/bundle-outcome.publisher.js';
import { bundleJobForUpload } from './upload/upload-completed.js';
import { PermissionSigningKeyCheck } from './verify/signing-key.check.js';

export const bundlerConfigSchema = baseConfigSchema
  .extend(objectStoreEnvSchema.shape)
  .extend(platformKeysEnvSchema.shape)
  .extend({
    BUNDLER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
    /** Part uploads (bundle) and part reads ahead (verify) in flight per job. */
    BUNDLER_PART_CONCURRENCY: z.coerce.number().int().min(1).max(16).default(3),
    /** How long a job's lock lasts unless renewed; a worker that dies gives its job up after this. */
    BUNDLER_LOCK_DURATION_MS: z.coerce.number().int().min(1000).default(30_000),
    /** How often workers look for jobs whose worker died (stalled jobs) and put them back. */
    BUNDLER_STALLED_INTERVAL_MS: z.coerce.number().int().min(500).default(30_000),
  });
export type BundlerConfig = z.infer<typeof bundlerConfigSchema>;

export interface RunningBundlerWorker {
  logger: Logger;
  instance: string;
  stop: () => Promise<void>;
}

const STALLED = 'job stalled more than allowable limit';

/**
 * The bundling worker: a process with no HTTP server that runs the jobs of the bundling queue
 * (bundle, verify, delete), relays the bundling schema's outbox, and beats a heartbeat so /health
 * can see it. `handlers` replaces the built-in handler of a job name (tests).
 */
export async function startBundlerWorker(
  env: Record<string, string | undefined> = process.env,
  handlers: ReadonlyMap<string, BundlingJobHandler> = new Map(),
): Promise<RunningBundlerWorker> {
  const config = loadConfig(bundlerConfigSchema, env);
  const identity = processIdentity(config, 'bundler-worker');
  const logger = createLogger({ service: 'bundler-worker', level: config.LOG_LEVEL });
  const instance = `bundler-worker-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;

  const keys = await loadPlatformKeys(config, {
    generateMissing: config.PLATFORM_KEYS_GENERATE ?? config.NODE_ENV !== 'production',
  });
  // Fingerprints only: never a key.
  logger.info({ source: keys.source, wrappingKeyId: keys.wrappingKeyId, signingKeyId: keys.signingKeyId }, 'platform keys loaded');

  await checkRedis(config.REDIS_URL);
  const prisma = await connectDatabase(config.DATABASE_URL);
  const store = await createObjectStore(objectStoreConfigFromEnv(config));
  const connection = { url: config.REDIS_URL, prefix: config.REDIS_PREFIX, logger };
  const queues = new QueueRegistry(connection);
  const outcomes = new BundleOutcomePublisher(prisma);

  // A seller-made bundle's signing key is checked with the permission service before it verifies.
  const signingKeys = new PermissionSigningKeyCheck({
    url: config.REDIS_URL,
    prefix: config.REDIS_PREFIX,
    timeoutMs: config.RPC_TIMEOUT_MS,
    signer: identity.signer,
  });
  const builtIn = createBundlingHandlers({
    store,
    keys,
    logger,
    outcomes,
    signingKeys,
    partConcurrency: config.BUNDLER_PART_CONCURRENCY,
    enqueue: (name, data, jobId) => queues.get(QueueName.bundling).add(name, data, { jobId }),
  });
  const all = new Map<string, BundlingJobHandler>([...builtIn, ...handlers]);

  const worker = createWorker(QueueName.bundling, createBundlingProcessor(all, logger), {
    ...connection,
    concurrency: config.BUNDLER_CONCURRENCY,
    options: {
      lockDuration: config.BUNDLER_LOCK_DURATION_MS,
      stalledInterval: config.BUNDLER_STALLED_INTERVAL_MS,
    },
  });
  // A job whose lock could not be renewed may already run elsewhere: stop ours.
  worker.on('lockRenewalFailed', (jobIds) => {
    for (const jobId of jobIds) {
      logger.warn({ jobId }, 'lost the lock of a bundling job; abandoning it');
      worker.cancelJob(jobId, 'the worker lost the job lock');
    }
  });
  worker.on('failed', (job, err) => {
    logger.warn({ jobId: job?.id, name: job?.name, attempt: job?.attemptsMade, err: err.message }, 'job failed');
    // Handlers report their own final failures; a job that stalled too often never reached one.
    const imageId = job ? imageIdOf(job) : undefined;
    if (!job || imageId === undefined || !err.message.includes(STALLED) || job.name === BundlingJobName.delete) return;
    outcomes.failed(imageId, failureOf(err, job.attemptsMade + 1)).catch((publishError: unknown) =>
      logger.error({ jobId: job.id, err: publishError }, 'could not publish bundling.bundle.failed'),
    );
  });

  const relay = new OutboxRelay({
    prisma,
    schema: 'bundling',
    queues: (name) => queues.get(name),
    logger,
    intervalMs: config.OUTBOX_RELAY_INTERVAL_MS,
    sign: identity.signEvent,
  });
  relay.start();

  // A deregistered image's bundle is deleted: the catalog says so with the image's new state.
  // A completed upload becomes its image's bundle job (one per image: a second delivery is a no-op).
  const events = startDomainEventConsumer({
    queue: EventQueue.bundling,
    trustedKeys: identity.trustedKeys,
    url: config.REDIS_URL,
    prefix: config.REDIS_PREFIX,
    logger,
    handlers: {
      'catalog.image.changed': async (image) => {
        if (image.state !== 'deregistered') return;
        const jobId = bundlingJobId(BundlingJobName.delete, image.imageId);
        await queues.get(QueueName.bundling).add(BundlingJobName.delete, { imageId: image.imageId }, { jobId });
      },
      'catalog.upload.completed': async (upload, event) => {
        if (upload.bundle) {
          // A bundle made on the seller's machine: its parts are in place; store its manifest and verify it.
          const verify = await storeSellerManifest(store, upload, event.requestId);
          const jobId = bundlingJobId(BundlingJobName.verify, upload.imageId);
          await queues.get(QueueName.bundling).add(BundlingJobName.verify, verify, { jobId });
          logger.info({ imageId: upload.imageId, uploadId: upload.uploadId, signerKeyId: upload.bundle.signerKeyId, jobId }, 'verify job queued for a seller-made bundle');
          return;
        }
        const jobId = bundlingJobId(BundlingJobName.bundle, upload.imageId);
        await queues.get(QueueName.bundling).add(BundlingJobName.bundle, bundleJobForUpload(upload, event.requestId), { jobId });
        logger.info({ imageId: upload.imageId, uploadId: upload.uploadId, parts: upload.parts.length, jobId }, 'bundle job queued for a completed upload');
      },
    },
  });

  const metrics = config.METRICS_PORT !== undefined ? await startMetricsServer(config.METRICS_PORT, config.METRICS_HOST) : undefined;

  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 });
  redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
  // The gateway answers GET /v1/platform/keys from here: sellers wrap data keys for the wrapping key.
  await publishPlatformKeys(redis, config.REDIS_PREFIX, keys);
  const heartbeat = new Heartbeat(redis, heartbeatKey(config.REDIS_PREFIX, 'bundler-worker'), instance);
  heartbeat.start();
  logger.info(
    { instance, concurrency: config.BUNDLER_CONCURRENCY, store: config.OBJECT_STORE_DRIVER },
    'bundler-worker is processing the bundling queue',
  );

  return {
    logger,
    instance,
    stop: async () => {
      await metrics?.close();
      await events.close();
      await worker.close();
      await signingKeys.close();
      await relay.stop();
      await heartbeat.stop();
      await queues.close();
      redis.disconnect();
      await store.close();
      await prisma.$disconnect();
    },
  };
}
