import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { baseConfigSchema, loadConfig } from '@imagemart/config';
import { QueueName, heartbeatKey } from '@imagemart/contracts';
import { OutboxRelay } from '@imagemart/database';
import { Heartbeat, QueueRegistry, checkRedis, connectDatabase, createWorker } from '@imagemart/messaging';
import { createLogger, startMetricsServer, type Logger } from '@imagemart/observability';
import { createBundlingProcessor, type BundlingJobHandler } from './jobs/bundling.processor.js';

export const bundlerConfigSchema = baseConfigSchema.extend({
  BUNDLER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
});

export interface RunningBundlerWorker {
  logger: Logger;
  instance: string;
  stop: () => Promise<void>;
}

/**
 * The bundling worker: a process with no HTTP server that runs the jobs of the bundling queue,
 * relays the bundling schema's outbox, and beats a heartbeat so /health can see it.
 */
export async function startBundlerWorker(
  env: Record<string, string | undefined> = process.env,
  handlers: ReadonlyMap<string, BundlingJobHandler> = new Map(),
): Promise<RunningBundlerWorker> {
  const config = loadConfig(bundlerConfigSchema, env);
  const logger = createLogger({ service: 'bundler-worker', level: config.LOG_LEVEL });
  const instance = `bundler-worker-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;

  await checkRedis(config.REDIS_URL);
  const prisma = await connectDatabase(config.DATABASE_URL);
  const connection = { url: config.REDIS_URL, prefix: config.REDIS_PREFIX };

  const worker = createWorker(QueueName.bundling, createBundlingProcessor(handlers, logger), {
    ...connection,
    concurrency: config.BUNDLER_CONCURRENCY,
  });
  worker.on('failed', (job, err) => logger.warn({ jobId: job?.id, name: job?.name, err: err.message }, 'job failed'));

  const queues = new QueueRegistry(connection);
  const relay = new OutboxRelay({ prisma, schema: 'bundling', queues: (name) => queues.get(name), logger });
  relay.start();

  const metrics = config.METRICS_PORT !== undefined ? await startMetricsServer(config.METRICS_PORT, config.METRICS_HOST) : undefined;

  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 });
  redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
  const heartbeat = new Heartbeat(redis, heartbeatKey(config.REDIS_PREFIX, 'bundler-worker'), instance);
  heartbeat.start();
  logger.info({ instance, concurrency: config.BUNDLER_CONCURRENCY }, 'bundler-worker is processing the bundling queue');

  return {
    logger,
    instance,
    stop: async () => {
      await metrics?.close();
      await worker.close();
      await relay.stop();
      await heartbeat.stop();
      await queues.close();
      redis.disconnect();
      await prisma.$disconnect();
    },
  };
}
