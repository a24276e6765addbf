import {
  Queue,
  Worker,
  type DefaultJobOptions,
  type Processor,
  type RedisOptions,
  type WorkerOptions,
} from 'bullmq';

/**
 * How every producer and worker in ImageMart reaches BullMQ: one Redis URL, one key prefix per
 * deployment (and per test run), and job options that retry with backoff and keep failed jobs
 * visible as the dead-letter record.
 */

/** pino's calling convention; a pino `Logger` fits. */
export interface BullLogger {
  error(obj: object, msg: string): void;
}

export interface BullConnectionOptions {
  url: string;
  /** BullMQ's key prefix: our REDIS_PREFIX, so deployments and test runs sharing a Redis never meet. */
  prefix: string;
  /** Where connection errors go; BullMQ would otherwise crash the process on an unhandled 'error'. */
  logger?: BullLogger;
}

export interface QueueConnectionOptions extends BullConnectionOptions {
  /** Merged over {@link DEFAULT_JOB_OPTIONS}. */
  defaultJobOptions?: DefaultJobOptions;
}

export interface WorkerConnectionOptions extends BullConnectionOptions {
  concurrency?: number;
  /** Further worker options (lock duration, limiter, autorun, …). */
  options?: Omit<WorkerOptions, 'connection' | 'prefix' | 'concurrency'>;
}

const HOUR_S = 60 * 60;

export const DEFAULT_JOB_OPTIONS = {
  attempts: 5,
  // 1 s, 2 s, 4 s, 8 s between the five attempts.
  backoff: { type: 'exponential', delay: 1000 },
  // Bounded retention: Redis runs with noeviction, so what we keep must not grow without limit.
  removeOnComplete: { age: 24 * HOUR_S, count: 1000 },
  // Failed jobs are the dead-letter record a person inspects (and retries) in bull-board: keep them longer.
  removeOnFail: { age: 30 * 24 * HOUR_S, count: 10_000 },
} as const satisfies DefaultJobOptions;

const consoleLogger: BullLogger = { error: (obj, msg) => console.error(msg, obj) };

/**
 * A producer. Fail fast: with no offline queue, `add()` rejects at once while Redis is away,
 * so a caller (an HTTP request, the outbox relay) learns it now and can retry, instead of hanging.
 */
export function createQueue<Data = unknown>(name: string, options: QueueConnectionOptions): Queue<Data> {
  const connection: RedisOptions = {
    url: options.url,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
  };
  const queue = new Queue<Data>(name, {
    connection,
    prefix: options.prefix,
    defaultJobOptions: { ...DEFAULT_JOB_OPTIONS, ...options.defaultJobOptions },
  });
  const logger = options.logger ?? consoleLogger;
  queue.on('error', (err) => logger.error({ err, queue: name }, 'BullMQ queue connection error'));
  return queue;
}

/**
 * A consumer. Its connections wait for Redis for ever (`maxRetriesPerRequest: null`, as BullMQ
 * requires for blocking commands), so a Redis restart pauses the worker instead of killing it.
 */
export function createWorker<Data = unknown, Result = unknown>(
  name: string,
  processor: Processor<Data, Result>,
  options: WorkerConnectionOptions,
): Worker<Data, Result> {
  const worker = new Worker<Data, Result>(name, processor, {
    ...options.options,
    connection: { url: options.url, maxRetriesPerRequest: null },
    prefix: options.prefix,
    concurrency: options.concurrency ?? 1,
  });
  const logger = options.logger ?? consoleLogger;
  worker.on('error', (err) => logger.error({ err, queue: name }, 'BullMQ worker error'));
  return worker;
}
