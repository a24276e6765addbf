import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEventJob } from '@imagemart/contracts';
import { createScratchDatabase } from './scratch-database.js';
import { appendOutboxEvent, OutboxRelay, type OutboxQueue, type OutboxRelayOptions } from './outbox.js';

/** This library's tests cannot use @imagemart/testing (it depends on this library). */
const migratedDatabase = (label: string) =>
  createScratchDatabase(process.env['DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/test', label);

/** This file's own Redis key prefix, deleted afterwards. */
const redis = {
  url: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
  prefix: `test:outbox:${randomBytes(6).toString('hex')}`,
  async cleanup() {
    const client = new Redis(this.url);
    try {
      const keys = await client.keys(`${this.prefix}:*`);
      if (keys.length) await client.unlink(...keys);
    } finally {
      client.disconnect();
    }
  },
};

async function waitFor<T>(check: () => Promise<T | undefined>, what: string): Promise<T> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(20)) {
    const value = await check();
    if (value !== undefined) return value;
  }
  throw new Error(`Timed out waiting for ${what}`);
}

let db: Awaited<ReturnType<typeof migratedDatabase>>;
const queues: Queue[] = [];
const relays: OutboxRelay[] = [];
let n = 0;

beforeAll(async () => {
  db = await migratedDatabase('outbox');
});

afterEach(async () => {
  await Promise.all(relays.splice(0).map((r) => r.stop()));
  await Promise.all(queues.splice(0).map((q) => q.close()));
  // Each test starts with an empty outbox.
  await db.prisma.permissionOutboxEvent.deleteMany();
  await db.prisma.account.deleteMany();
});

afterAll(async () => {
  await db?.drop();
  await redis?.cleanup();
});

/** A real BullMQ queue of its own for each test, under this file's Redis prefix. */
function newQueue(): Queue<DomainEventJob> {
  const queue = new Queue<DomainEventJob>(`events-${++n}`, {
    connection: { url: redis.url },
    prefix: redis.prefix,
  });
  queues.push(queue as Queue);
  return queue;
}

function newRelay(queue: OutboxQueue, options: Partial<OutboxRelayOptions> = {}): OutboxRelay {
  const relay = new OutboxRelay({ prisma: db.prisma, schema: 'permission', queues: () => queue, ...options });
  relays.push(relay);
  return relay;
}

/** Wraps a queue to count every add, duplicates included. */
function counting(queue: Queue<DomainEventJob>, delayMs = 0) {
  const added: string[] = [];
  const wrapper: OutboxQueue = {
    async add(name, data, opts) {
      added.push(opts.jobId);
      if (delayMs) await sleep(delayMs);
      return queue.add(name, data, opts);
    },
  };
  return { wrapper, added };
}

async function appendEvents(count: number, queueName: string): Promise<string[]> {
  return db.prisma.$transaction(async (tx) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      ids.push(
        await appendOutboxEvent(tx, 'permission', {
          type: 'test.event.happened',
          queue: queueName,
          payload: { i },
        }),
      );
    }
    return ids;
  });
}

describe('OutboxRelay', () => {
  it('relays an event written in the same transaction as its data to the BullMQ queue', async () => {
    const queue = newQueue();
    const payload = { accountId: '123456789012', roles: ['seller'] };

    const eventId = await db.prisma.$transaction(async (tx) => {
      await tx.account.create({
        data: { id: '123456789012', name: 'Ada', email: 'ada@example.com', roles: ['seller'] },
      });
      return appendOutboxEvent(tx, 'permission', {
        type: 'permission.account.created',
        queue: queue.name,
        payload,
        requestId: 'req-42',
      });
    });

    await expect(newRelay(queue).relayOnce()).resolves.toEqual({ published: 1, failed: 0 });

    const row = await db.prisma.permissionOutboxEvent.findUniqueOrThrow({ where: { id: eventId } });
    expect(row.publishedAt).toBeInstanceOf(Date);
    const job = await queue.getJob(eventId);
    expect(job?.id).toBe(eventId);
    expect(job?.name).toBe('permission.account.created');
    expect(job?.data).toEqual({
      id: eventId,
      type: 'permission.account.created',
      payload,
      requestId: 'req-42',
      occurredAt: row.createdAt.toISOString(),
    });
  });

  it('publishes nothing from a transaction that rolled back', async () => {
    const queue = newQueue();

    const rolledBack = db.prisma.$transaction(async (tx) => {
      await appendOutboxEvent(tx, 'permission', {
        type: 'test.event.happened',
        queue: queue.name,
        payload: {},
      });
      throw new Error('the business write failed');
    });
    await expect(rolledBack).rejects.toThrow('the business write failed');

    await expect(newRelay(queue).relayOnce()).resolves.toEqual({ published: 0, failed: 0 });
    expect(await queue.count()).toBe(0);
  });

  it('publishes each event exactly once when two relays run at the same time', async () => {
    const queue = newQueue();
    const ids = await appendEvents(120, queue.name);
    const a = counting(queue, 2);
    const b = counting(queue, 2);
    const relayA = newRelay(a.wrapper, { batchSize: 10 });
    const relayB = newRelay(b.wrapper, { batchSize: 10 });

    const drain = async (relay: OutboxRelay) => {
      while ((await relay.relayOnce()).published > 0);
    };
    await Promise.all([drain(relayA), drain(relayB)]);

    const added = [...a.added, ...b.added];
    expect(added.sort()).toEqual([...ids].sort()); // every event once, none twice
    expect(a.added.length).toBeGreaterThan(0);
    expect(b.added.length).toBeGreaterThan(0);
    expect(await queue.count()).toBe(120);
    expect(await db.prisma.permissionOutboxEvent.count({ where: { publishedAt: null } })).toBe(0);
  });

  it('yields one job when a relay delivers an event again after crashing before it marked it', async () => {
    const queue = newQueue();
    const { wrapper, added } = counting(queue);
    const [eventId] = await appendEvents(1, queue.name);
    const relay = newRelay(wrapper);

    await relay.relayOnce();
    // The crash: the job reached Redis, but published_at never committed.
    await db.prisma.permissionOutboxEvent.update({ where: { id: eventId }, data: { publishedAt: null } });
    await expect(relay.relayOnce()).resolves.toEqual({ published: 1, failed: 0 });

    expect(added).toEqual([eventId, eventId]);
    expect(await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed')).toMatchObject({
      waiting: 1,
    });
    expect(await queue.count()).toBe(1);
  });

  it('counts a failed delivery on its row, goes on with the others, and retries it later', async () => {
    const queue = newQueue();
    const [first, second] = await appendEvents(2, queue.name);
    let failNext = true;
    const flaky: OutboxQueue = {
      add(name, data, opts) {
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error('Redis said no'));
        }
        return queue.add(name, data, opts);
      },
    };
    const warnings: object[] = [];
    const logger = { info: () => undefined, warn: (o: object) => warnings.push(o), error: () => undefined };
    const relay = newRelay(flaky, { logger });

    await expect(relay.relayOnce()).resolves.toEqual({ published: 1, failed: 1 });
    expect(await db.prisma.permissionOutboxEvent.findUniqueOrThrow({ where: { id: first } })).toMatchObject({
      attempts: 1,
      lastError: 'Redis said no',
      publishedAt: null,
    });
    expect(await queue.getJob(second)).toBeDefined();
    expect(warnings).toHaveLength(1);

    // Backoff: not again at once (2^1 s after the first failure)...
    await expect(relay.relayOnce()).resolves.toEqual({ published: 0, failed: 0 });
    // ...but once that time has passed.
    await db.prisma.$executeRaw`UPDATE permission.outbox_event SET updated_at = now() - interval '3 seconds' WHERE id = ${first}::uuid`;
    await expect(relay.relayOnce()).resolves.toEqual({ published: 1, failed: 0 });
    expect(await queue.count()).toBe(2);
  });

  it('pauses without counting attempts while Redis cannot be reached', async () => {
    const queue = newQueue();
    const ids = await appendEvents(3, queue.name);
    let reachable = false;
    const calls: string[] = [];
    const sometimesAway: OutboxQueue = {
      add(name, data, opts) {
        calls.push(opts.jobId);
        if (!reachable) return Promise.reject(new Error("Stream isn't writeable and enableOfflineQueue options is false"));
        return queue.add(name, data, opts);
      },
    };
    const relay = newRelay(sometimesAway, { logger: { info: () => undefined, warn: () => undefined, error: () => undefined } });

    for (let i = 0; i < 25; i++) await expect(relay.relayOnce()).resolves.toEqual({ published: 0, failed: 0 });
    expect(calls).toHaveLength(25); // one try a poll, not one a row
    const rows = await db.prisma.permissionOutboxEvent.findMany({ where: { id: { in: ids } } });
    expect(rows.map((r) => [r.attempts, r.publishedAt])).toEqual([
      [0, null],
      [0, null],
      [0, null],
    ]);

    reachable = true;
    await expect(relay.relayOnce()).resolves.toEqual({ published: 3, failed: 0 });
    expect(await queue.count()).toBe(3);
  });

  it("adds each queue's jobs in one bulk, in the order they were written, when events for two queues interleave", async () => {
    const [first, second] = [newQueue(), newQueue()];
    const bulks: string[][] = [];
    const bulkCounting = (queue: Queue<DomainEventJob>): OutboxQueue => ({
      add: (name, data, opts) => queue.add(name, data, opts),
      addBulk: (jobs) => {
        bulks.push(jobs.map((j) => j.opts.jobId));
        return queue.addBulk(jobs);
      },
    });
    const byName = new Map([
      [first.name, bulkCounting(first)],
      [second.name, bulkCounting(second)],
    ]);
    const ids = await db.prisma.$transaction(async (tx) => {
      const written: string[] = [];
      for (let i = 0; i < 6; i++) {
        const queue = i % 2 === 0 ? first.name : second.name;
        written.push(await appendOutboxEvent(tx, 'permission', { type: 'test.event.happened', queue, payload: { i } }));
      }
      return written;
    });
    const relay = newRelay(bulkCounting(first), { queues: (name) => byName.get(name) ?? bulkCounting(first) });

    await expect(relay.relayOnce()).resolves.toEqual({ published: 6, failed: 0 });
    expect(bulks).toEqual([
      [ids[0], ids[2], ids[4]],
      [ids[1], ids[3], ids[5]],
    ]);
    const order = async (queue: Queue<DomainEventJob>) => (await queue.getJobs(['wait'], 0, -1, true)).map((j) => (j.data.payload as { i: number }).i);
    expect(await order(first)).toEqual([0, 2, 4]);
    expect(await order(second)).toEqual([1, 3, 5]);
  });

  it('relays continuously once started, and purges published events past their retention', async () => {
    const queue = newQueue();
    const relay = newRelay(queue, { intervalMs: 20, retentionMs: 60_000 });
    relay.start();

    const [eventId] = await appendEvents(1, queue.name);
    await waitFor(() => queue.getJob(eventId), 'the relay to publish the event');
    await relay.stop();

    expect(await relay.purgePublished()).toBe(0); // published just now: kept
    await db.prisma.permissionOutboxEvent.update({
      where: { id: eventId },
      data: { publishedAt: new Date(Date.now() - 120_000) },
    });
    expect(await relay.purgePublished()).toBe(1);
  });
});
