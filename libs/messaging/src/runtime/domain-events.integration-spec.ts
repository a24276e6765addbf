import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DomainEventType,
  EVENT_ROUTES,
  EventQueue,
  type DomainEventJob,
  type ImageChanged,
  type LaunchPermissionChanged,
} from '@imagemart/contracts';
import { OutboxRelay, publishDomainEvent } from '@imagemart/database';
import { createLogger, requestContext } from '@imagemart/observability';
import { createTestDatabase, createTestRedisPrefix, waitFor, type TestDatabase, type TestRedisPrefix } from '@imagemart/testing';
import { QueueRegistry } from './queue-registry.js';
import { startDomainEventConsumer } from './domain-events.consumer.js';

/**
 * Domain events end to end: a producer writes one in its transaction, the outbox relay puts it on
 * the consuming service's queue, and the consumer validates it and runs the handler in the
 * request context of the request that caused it.
 */
let db: TestDatabase;
let redis: TestRedisPrefix;
let queues: QueueRegistry;
const logger = createLogger({ service: 'events-test', level: 'silent' });

beforeAll(async () => {
  db = await createTestDatabase('events');
  redis = createTestRedisPrefix('events');
  queues = new QueueRegistry({ url: redis.url, prefix: redis.prefix });
});

afterAll(async () => {
  await queues?.close();
  await db?.drop();
  await redis?.cleanup();
});

const image: ImageChanged = {
  imageId: 'ami-0123456789abcdef0',
  ownerId: '111122223333',
  state: 'available',
  productCodes: [],
  revision: 1,
};

describe('domain events', () => {
  it('are written once per subscribing queue, in the producing transaction only', async () => {
    await db.prisma.$transaction(async (tx) => {
      await publishDomainEvent(tx, 'catalog', { type: DomainEventType.imageChanged, payload: image, requestId: 'req-1' });
    });
    await expect(
      db.prisma.$transaction(async (tx) => {
        await publishDomainEvent(tx, 'catalog', { type: DomainEventType.imageChanged, payload: { ...image, revision: 2 } });
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    const rows = await db.prisma.catalogOutboxEvent.findMany({ orderBy: { queue: 'asc' } });
    expect(rows.map((r) => [r.type, r.queue, (r.payload as ImageChanged).revision, r.requestId])).toEqual(
      [...EVENT_ROUTES['catalog.image.changed']].sort().map((queue) => ['catalog.image.changed', queue, 1, 'req-1']),
    );
  });

  it('reach the handler validated, in the request context of their cause; bad payloads are dead letters', async () => {
    const seen: { payload: ImageChanged; requestId: string | undefined }[] = [];
    const worker = startDomainEventConsumer({
      queue: EventQueue.permission,
      url: redis.url,
      prefix: redis.prefix,
      logger,
      handlers: {
        'catalog.image.changed': (payload) => {
          seen.push({ payload, requestId: requestContext.requestId() });
          return Promise.resolve();
        },
      },
    });
    const relay = new OutboxRelay({ prisma: db.prisma, schema: 'catalog', queues: (name) => queues.get(name), logger });
    try {
      expect(await relay.relayOnce()).toEqual({ published: EVENT_ROUTES['catalog.image.changed'].length, failed: 0 });
      await waitFor(() => seen.length === 1, { what: 'the event to be handled' });
      expect(seen[0]).toEqual({ payload: image, requestId: 'req-1' });

      // An event type this consumer has no handler for completes without effect.
      const queue = new Queue<DomainEventJob>(EventQueue.permission, { connection: { url: redis.url }, prefix: redis.prefix });
      const lp: LaunchPermissionChanged = { imageId: image.imageId, public: true, grants: [], revision: 1 };
      const job = (payload: unknown, id: string): DomainEventJob => ({ id, type: '', payload, occurredAt: new Date().toISOString() });
      await queue.add(DomainEventType.launchPermissionChanged, job(lp, 'e-unhandled'), { jobId: 'e-unhandled' });
      // A payload that breaks its schema fails at once, without retries, and stays in the failed set.
      await queue.add(DomainEventType.imageChanged, job({ ...image, imageId: 'ami-BAD' }, 'e-bad'), {
        jobId: 'e-bad',
        attempts: 5,
      });
      await waitFor(async () => ((await queue.getJobState('e-unhandled')) === 'completed' ? true : undefined), { what: 'unhandled event completed' });
      await waitFor(async () => ((await queue.getJobState('e-bad')) === 'failed' ? true : undefined), { what: 'bad event failed' });
      const bad = await queue.getJob('e-bad');
      expect(bad?.attemptsMade).toBe(1);
      expect(bad?.failedReason).toMatch(/Invalid catalog.image.changed payload: imageId/);
      expect(seen).toHaveLength(1);
      await queue.close();
    } finally {
      await worker.close();
      await relay.stop();
    }
  });
});
