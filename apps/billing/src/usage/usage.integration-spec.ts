import { randomUUID } from 'node:crypto';
import type { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainEventType, EventQueue, type DomainEventJob, type InstanceChanged } from '@imagemart/contracts';
import { createLogger } from '@imagemart/observability';
import {
  createQueue,
  DOMAIN_EVENT_HANDLERS,
  startDomainEventConsumer,
  type DomainEventHandlers,
} from '@imagemart/messaging';
import {
  createTestDatabase,
  createTestRedisPrefix,
  waitFor,
  type TestDatabase,
  type TestRedisPrefix,
} from '@imagemart/testing';
import {
  admin,
  buyer,
  codeOf,
  newAccountId,
  seller,
  startBillingTestEnv,
  type BillingTestEnv,
} from '../testing/billing-test-env.fixture.js';
import { UsageIngestBatcher } from './usage-ingest.batcher.js';
import { instanceEvent, newInstanceId } from './usage-event.fixture.js';
import { UsageRepository } from './usage.repository.js';
import { UsageService } from './usage.service.js';

let db: TestDatabase;
let redis: TestRedisPrefix;
let env: BillingTestEnv;
let batcher: UsageIngestBatcher;
let repo: UsageRepository;
let service: UsageService;

beforeAll(async () => {
  db = await createTestDatabase('billing-usage');
  redis = createTestRedisPrefix('billing-usage');
  env = await startBillingTestEnv({ prisma: db.prisma, redisUrl: redis.url, prefix: redis.prefix });
  batcher = env.moduleRef.get(UsageIngestBatcher);
  repo = env.moduleRef.get(UsageRepository);
  service = env.moduleRef.get(UsageService);
});

afterAll(async () => {
  await env?.close();
  await redis?.cleanup();
  await db?.drop();
});

const record = (instanceId: string) => db.prisma.usageRecord.findUnique({ where: { id: instanceId } });
const nov = { start: new Date('2026-11-01T00:00:00Z'), end: new Date('2026-12-01T00:00:00Z') };
const dec = { start: new Date('2026-12-01T00:00:00Z'), end: new Date('2027-01-01T00:00:00Z') };
const secondsIn = async (accountId: string, period: { start: Date; end: Date }, asOf?: Date) =>
  (await repo.groups(accountId, period.start, period.end, asOf)).reduce((s, g) => s + g.seconds, 0n);

function run(
  accountId: string,
  runningAt: string,
  stoppedAt: string | null,
  extra: Partial<InstanceChanged> = {},
): InstanceChanged {
  return {
    ...instanceEvent({
      accountId,
      sellerId: '300000000003',
      productCode: null,
      instanceType: 't3.micro',
      runningAt,
      stoppedAt,
    }),
    ...extra,
  };
}

describe('usage records from catalog.instance.changed', () => {
  it('meters events taken from the billing event queue, as the catalog relay puts them there', async () => {
    const logger = createLogger({ service: 'billing-test', level: 'silent' });
    const worker: Worker = startDomainEventConsumer({
      queue: EventQueue.billing,
      handlers: env.moduleRef.get<DomainEventHandlers>(DOMAIN_EVENT_HANDLERS),
      url: redis.url,
      prefix: redis.prefix,
      logger,
      concurrency: 64,
    });
    const queue = createQueue<DomainEventJob>(EventQueue.billing, { url: redis.url, prefix: redis.prefix });
    try {
      const me = newAccountId();
      const runs = Array.from({ length: 200 }, (_, i) =>
        run(me, `2026-11-02T00:${String(i % 60).padStart(2, '0')}:00Z`, '2026-11-02T02:00:00Z'),
      );
      const jobs = runs.flatMap((payload) => {
        const running = { ...payload, state: 'running' as const, stoppedAt: null, revision: 2 };
        return [payload, running, payload].map((p) => {
          const id = randomUUID();
          return {
            name: DomainEventType.instanceChanged,
            data: {
              id,
              type: DomainEventType.instanceChanged,
              payload: p,
              occurredAt: new Date().toISOString(),
            },
            opts: { jobId: id },
          };
        });
      });
      await queue.addBulk(jobs);
      await waitFor(async () => (await db.prisma.usageRecord.count({ where: { accountId: me } })) === 200, {
        what: 'the records',
        timeoutMs: 120_000,
      });
      await waitFor(
        async () => {
          const c = await queue.getJobCounts('waiting', 'active', 'completed');
          return c['waiting'] === 0 && c['active'] === 0 && c['completed'] === 600;
        },
        { what: 'every job to complete', timeoutMs: 120_000 },
      );
      // The newer (terminated) revision wins, whichever order the three events were taken in.
      const rows = await db.prisma.usageRecord.findMany({ where: { accountId: me } });
      expect(rows.every((r) => r.revision === 3 && r.state === 'terminated' && r.stoppedAt !== null)).toBe(
        true,
      );
    } finally {
      await worker.close();
      await queue.close();
    }
  });

  it('counts the same event twice once, and keeps the highest revision whatever the order', async () => {
    const me = newAccountId();
    const id = newInstanceId();
    const terminated = run(me, '2026-11-03T00:00:00Z', '2026-11-03T01:00:00Z', {
      instanceId: id,
      revision: 3,
    });
    const running = { ...terminated, state: 'running' as const, stoppedAt: null, revision: 2 };
    await batcher.submit(terminated);
    await Promise.all([batcher.submit(running), batcher.submit(terminated), batcher.submit(running)]);
    await batcher.submit(running);
    expect(await record(id)).toMatchObject({
      revision: 3,
      state: 'terminated',
      stoppedAt: new Date('2026-11-03T01:00:00Z'),
    });
    expect(await secondsIn(me, nov)).toBe(3600n);
    // In one batch too: the statement keeps the highest revision of an instance it sees twice.
    const other = newInstanceId();
    await repo.upsertMany([
      { ...running, instanceId: other },
      { ...terminated, instanceId: other },
      { ...running, instanceId: other },
    ]);
    expect(await record(other)).toMatchObject({ revision: 3 });
  });

  it('fails only the bad event of a batch, not its neighbours', async () => {
    const me = newAccountId();
    const good = [
      run(me, '2026-11-04T00:00:00Z', '2026-11-04T01:00:00Z'),
      run(me, '2026-11-04T02:00:00Z', '2026-11-04T03:00:00Z'),
    ];
    const bad = run(me, '2026-11-04T05:00:00Z', '2026-11-04T04:00:00Z'); // stops before it ran
    const outcomes = await Promise.allSettled([
      batcher.submit(good[0]),
      batcher.submit(bad),
      batcher.submit(good[1]),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await secondsIn(me, nov)).toBe(7200n);
  });

  it('splits a run that crosses a month boundary by its timestamps', async () => {
    const me = newAccountId();
    await batcher.submit(run(me, '2026-11-30T23:00:00Z', '2026-12-01T01:30:00Z'));
    expect(await secondsIn(me, nov)).toBe(3600n);
    expect(await secondsIn(me, dec)).toBe(5400n);
  });

  it('meters whole seconds, a run under 60 s as 60 s in the month it stopped, and a still running instance up to the end', async () => {
    const me = newAccountId();
    await batcher.submit(run(me, '2026-11-05T00:00:00.900Z', '2026-11-05T00:00:10.100Z')); // 10 s → 60
    expect(await secondsIn(me, nov)).toBe(60n);
    const you = newAccountId();
    await batcher.submit(run(you, '2026-11-30T23:59:40Z', '2026-12-01T00:00:10Z')); // 20 s + 10 s → 20 s + 40 s
    expect(await secondsIn(you, nov)).toBe(20n);
    expect(await secondsIn(you, dec)).toBe(40n);
    const them = newAccountId();
    await batcher.submit(run(them, '2026-11-30T22:00:00Z', null));
    expect(await secondsIn(them, nov)).toBe(7200n);
    expect(await secondsIn(them, dec, new Date('2026-12-01T00:30:00Z'))).toBe(1800n);
    // Terminated before it ever ran: nothing metered.
    const none = newAccountId();
    await batcher.submit(
      run(none, null as unknown as string, '2026-11-05T00:00:00Z', { runningAt: null, state: 'terminated' }),
    );
    expect(await secondsIn(none, nov)).toBe(0n);
  });

  it('lands a late event in the month its timestamps fall in', async () => {
    const me = newAccountId();
    await batcher.submit(run(me, '2026-12-02T00:00:00Z', '2026-12-02T01:00:00Z'));
    await batcher.submit(run(me, '2026-11-10T00:00:00Z', '2026-11-10T02:00:00Z')); // arrives after December's
    expect(await secondsIn(me, nov)).toBe(7200n);
    expect(await secondsIn(me, dec)).toBe(3600n);
  });

  it("answers this month's usage so far, priced, to its buyer; another buyer's only to an admin", async () => {
    const me = buyer();
    const now = new Date();
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const started = new Date(Math.max(monthStart.getTime(), now.getTime() - 3_600_000));
    await batcher.submit(
      run(
        me.accountId,
        started.toISOString(),
        new Date(
          started.getTime() + 1800_000 > now.getTime() ? now.getTime() : started.getTime() + 1800_000,
        ).toISOString(),
      ),
    );
    const view = await service.current(me, undefined, now);
    expect(view).toMatchObject({
      accountId: me.accountId,
      currency: 'USD',
      periodStart: monthStart.toISOString(),
    });
    expect(view.lines).toHaveLength(1);
    expect(view.lines[0]).toMatchObject({
      productCode: null,
      instanceType: 't3.micro',
      instances: 1,
      hourly: '0.0104',
    });
    expect(await codeOf(service.current(buyer(), me.accountId))).toBe('UnauthorizedOperation');
    expect(await codeOf(service.current(seller(), me.accountId))).toBe('UnauthorizedOperation');
    await expect(service.current(admin(), me.accountId, now)).resolves.toEqual(view);
  });
});
