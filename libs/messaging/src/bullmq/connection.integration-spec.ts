import { Redis } from 'ioredis';
import type { Job } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestRedisPrefix, waitFor, type TestRedisPrefix } from '@imagemart/testing';
import { createQueue, createWorker, DEFAULT_JOB_OPTIONS } from './connection.js';
import { UnrecoverableError } from './index.js';

let redis: TestRedisPrefix;
interface Closable {
  close(): Promise<void>;
}
const workers: Closable[] = [];
const queues: Closable[] = [];
let n = 0;

beforeAll(() => {
  redis = createTestRedisPrefix('bullmq');
});

afterEach(async () => {
  // Workers first, so none is left blocking on a closed queue.
  await Promise.all(workers.splice(0).map((w) => w.close()));
  await Promise.all(queues.splice(0).map((q) => q.close()));
});

afterAll(async () => {
  await redis?.cleanup();
});

const connection = () => ({ url: redis.url, prefix: redis.prefix });

function ownQueue<T extends Closable>(q: T): T {
  queues.push(q);
  return q;
}
function ownWorker<T extends Closable>(w: T): T {
  workers.push(w);
  return w;
}

/** Jobs that retry quickly, so the test sees the whole backoff sequence in well under a second. */
const fast = { attempts: 3, backoff: { type: 'exponential', delay: 100 } } as const;

describe('BullMQ connection factory', () => {
  it('has a worker process what a producer with the same prefix added, under that prefix only', async () => {
    const name = `q-${++n}`;
    const queue = ownQueue(createQueue<{ x: number }>(name, connection()));
    const worker = ownWorker(
      createWorker<{ x: number }, number>(name, (job) => Promise.resolve(job.data.x * 2), connection()),
    );
    const completed = new Promise<[Job, unknown]>((resolve) =>
      worker.on('completed', (job, result) => resolve([job, result])),
    );

    const added = await queue.add('double', { x: 21 }, { jobId: 'job-1' });
    const [job, result] = await completed;

    expect(added.id).toBe('job-1');
    expect(job.id).toBe('job-1');
    expect(result).toBe(42);
    expect(job.opts).toMatchObject({
      attempts: DEFAULT_JOB_OPTIONS.attempts,
      backoff: DEFAULT_JOB_OPTIONS.backoff,
    });

    // Every key BullMQ wrote is under our prefix.
    const client = new Redis(redis.url);
    try {
      const keys = await client.keys(`*:${name}:*`);
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.every((k) => k.startsWith(`${redis.prefix}:${name}:`))).toBe(true);
    } finally {
      client.disconnect();
    }
  });

  it('retries a failing job with exponential backoff, then keeps it as failed (the dead letter)', async () => {
    const name = `q-${++n}`;
    const queue = ownQueue(createQueue(name, { ...connection(), defaultJobOptions: fast }));
    const attemptsAt: number[] = [];
    const worker = ownWorker(
      createWorker(
        name,
        () => {
          attemptsAt.push(Date.now());
          return Promise.reject(new Error('still broken'));
        },
        connection(),
      ),
    );

    const job = await queue.add('doomed', {});
    await waitFor(async () => (await queue.getJobState(job.id!)) === 'failed', {
      what: 'the job to fail for good',
    });

    expect(attemptsAt).toHaveLength(3);
    const gaps = attemptsAt.slice(1).map((t, i) => t - attemptsAt[i]);
    expect(gaps[0]).toBeGreaterThanOrEqual(100 - 5); // 100 ms
    expect(gaps[1]).toBeGreaterThanOrEqual(200 - 5); // then 200 ms
    const failed = await queue.getFailed();
    expect(failed.map((j) => j.id)).toEqual([job.id]);
    expect(failed[0]).toMatchObject({ attemptsMade: 3, failedReason: 'still broken' });
    expect(worker.isRunning()).toBe(true);
  });

  it('fails a job at once on UnrecoverableError, attempts left or not', async () => {
    const name = `q-${++n}`;
    const queue = ownQueue(createQueue(name, { ...connection(), defaultJobOptions: fast }));
    let calls = 0;
    ownWorker(
      createWorker(
        name,
        () => {
          calls++;
          return Promise.reject(new UnrecoverableError('payload is not a bundling job'));
        },
        connection(),
      ),
    );

    const job = await queue.add('bad', { nonsense: true });
    await waitFor(async () => (await queue.getJobState(job.id!)) === 'failed', { what: 'the job to fail' });

    expect(calls).toBe(1);
    const failed = await queue.getJob(job.id!);
    expect(failed).toMatchObject({ attemptsMade: 1, failedReason: 'payload is not a bundling job' });
  });

  it('keeps completed and failed jobs for a bounded time and number', () => {
    expect(DEFAULT_JOB_OPTIONS.attempts).toBeGreaterThan(1);
    expect(DEFAULT_JOB_OPTIONS.removeOnComplete.count).toBeGreaterThan(0);
    expect(DEFAULT_JOB_OPTIONS.removeOnFail.age).toBeGreaterThan(DEFAULT_JOB_OPTIONS.removeOnComplete.age);
  });
});
