/**
 * Usage metering and the month close under load. 10,000 buyers, ten priced products and a
 * subscription per buyer are seeded straight into a scratch database; 1,000,000
 * `catalog.instance.changed` events (500,000 instances, each seen running and then terminated,
 * one pair in seven arriving in reverse order) are put on the billing event queue as the catalog's
 * outbox relay puts them; then the built billing service starts in a child process and drains the
 * queue into usage records. Reported: events per second from the first record to the last job
 * done (the queue is filled before the service starts, so the producer's work is not counted).
 * Then `billing.invoices.close-month` closes November for every buyer through the Redis Streams
 * transport, timed from the request to the answer.
 *
 * Needs the build (`npm run build`; run here when dist/ is missing). Standalone:
 * `node --import tsx bench/billing.bench.ts` from the repository root.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BillingPattern,
  DomainEventType,
  EventQueue,
  type CloseMonthResult,
  type DomainEventJob,
  type InstanceChanged,
} from '@imagemart/contracts';
import { createQueue, createRpcClient, sendRpc } from '@imagemart/messaging';
import { createTestDatabase, createTestRedisPrefix, TestIdentities } from '@imagemart/testing';
import { childNodeArgs, runIfMain, stopChild } from './support/process.js';

const BUYERS = 10_000;
const PRODUCTS = 10;
const EVENTS = Number(process.env['BENCH_BILLING_EVENTS'] ?? 1_000_000);
const INSTANCES = EVENTS / 2;
const MONTH = '2026-11';
const MONTH_START = Date.UTC(2026, 10, 1);
const INSTANCE_TYPES = ['t3.micro', 't3.small', 'm5.large', 'c5.xlarge'];

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const mainJs = `${repoRoot}dist/apps/billing/src/main.js`;

const accountId = (n: number) => String(1_000_000_000 + n).padStart(12, '0');
const sellerId = (p: number) => String(900_000_000_000 + p);
const productCode = (p: number) => `prod-bench${String(p).padStart(15, '0')}`;
const instanceId = (k: number) => `i-${k.toString(16).padStart(17, '0')}`;

function events(k: number): [InstanceChanged, InstanceChanged] {
  const buyer = k % BUYERS;
  const product = buyer % PRODUCTS;
  const runningAt = MONTH_START + (k % 2_500_000) * 1000;
  const stoppedAt = runningAt + ((k * 7919) % 7200) * 1000 + 30_000;
  const base = {
    instanceId: instanceId(k),
    accountId: accountId(buyer),
    imageId: `ami-${(k % 5000).toString(16).padStart(17, '0')}`,
    sellerId: sellerId(product),
    productCode: k % 2 === 0 ? productCode(product) : null,
    instanceType: INSTANCE_TYPES[(k >> 1) % INSTANCE_TYPES.length],
  };
  return [
    { ...base, state: 'running', runningAt: new Date(runningAt).toISOString(), stoppedAt: null, revision: 2 },
    {
      ...base,
      state: 'terminated',
      runningAt: new Date(runningAt).toISOString(),
      stoppedAt: new Date(stoppedAt).toISOString(),
      revision: 3,
    },
  ];
}

export async function run(): Promise<Record<string, number | string>> {
  if (!existsSync(mainJs))
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, stdio: 'inherit' });
  const db = await createTestDatabase('bench-billing');
  const keys = createTestRedisPrefix('bench-billing');
  const queue = createQueue<DomainEventJob>(EventQueue.billing, { url: keys.url, prefix: keys.prefix });
  const client = createRpcClient('billing', {
    connection: keys.url,
    prefix: keys.prefix,
    timeoutMs: 600_000,
    signer: TestIdentities.shared().asAllowedSender(),
  });
  let service: ChildProcess | undefined;
  try {
    await seed(db.prisma);

    // The queue as the catalog's relay leaves it: one job per event, the event id as job id.
    const fillStart = Date.now();
    const CHUNK = 1000;
    for (let k = 0; k < INSTANCES; k += CHUNK / 2) {
      const jobs: { name: string; data: DomainEventJob; opts: { jobId: string } }[] = [];
      for (let i = k; i < Math.min(k + CHUNK / 2, INSTANCES); i++) {
        const pair = events(i);
        if (i % 7 === 0) pair.reverse();
        for (const payload of pair) {
          const id = randomUUID();
          jobs.push({
            name: DomainEventType.instanceChanged,
            // Signed as the catalog's outbox relay signs it: billing acts only on its producer's events.
            data: TestIdentities.shared().signedEvent(
              'catalog',
              { id, type: DomainEventType.instanceChanged, payload, occurredAt: new Date().toISOString() },
              EventQueue.billing,
            ),
            opts: { jobId: id },
          });
        }
      }
      await queue.addBulk(jobs);
    }
    const fillS = (Date.now() - fillStart) / 1000;
    process.stderr.write(`queue filled with ${EVENTS} events in ${fillS.toFixed(1)} s\n`);

    service = spawn(process.execPath, [...childNodeArgs(), mainJs], {
      cwd: repoRoot,
      env: {
        PATH: process.env['PATH'] ?? '',
        DATABASE_URL: db.url,
        REDIS_URL: keys.url,
        REDIS_PREFIX: keys.prefix,
        LOG_LEVEL: 'warn',
        MONTH_CLOSE_INTERVAL_MS: '0',
        ...TestIdentities.shared().env('billing'),
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });

    // From the first job taken to the last one done.
    let started: number | undefined;
    for (;;) {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
      const left = (counts['waiting'] ?? 0) + (counts['active'] ?? 0) + (counts['delayed'] ?? 0);
      if (started === undefined && left < EVENTS) started = Date.now();
      if (left === 0) break;
      await sleep(started === undefined ? 20 : 100);
    }
    const ingestS = (Date.now() - started!) / 1000;
    process.stderr.write(`ingested in ${ingestS.toFixed(1)} s\n`);
    const failed = (await queue.getJobCounts('failed'))['failed'] ?? 0;
    const [stored] = await db.prisma.$queryRaw<{ n: bigint; done: bigint }[]>`
      SELECT count(*) AS n, count(*) FILTER (WHERE revision = 3 AND stopped_at IS NOT NULL) AS done FROM billing.usage_record`;
    if (Number(stored.n) !== INSTANCES || Number(stored.done) !== INSTANCES || failed > 0) {
      throw new Error(
        `Expected ${INSTANCES} terminated records and no failed job; found ${stored.n} (${stored.done} terminated), ${failed} failed`,
      );
    }

    await client.connect();
    const closeStart = Date.now();
    const closed = await sendRpc<CloseMonthResult>(client, BillingPattern.invoicesCloseMonth, {
      month: MONTH,
    });
    const closeS = (Date.now() - closeStart) / 1000;
    const [invoices] = await db.prisma.$queryRaw<{ n: bigint; total: string }[]>`
      SELECT count(*) AS n, sum(total)::text AS total FROM billing.invoice WHERE kind = 'invoice' AND period_start = ${new Date(MONTH_START)}`;
    if (Number(invoices.n) !== BUYERS || closed.buyers !== BUYERS) {
      throw new Error(
        `Expected ${BUYERS} invoices; the close answered ${JSON.stringify(closed)} and ${invoices.n} exist`,
      );
    }

    return {
      usage_events: EVENTS,
      usage_events_per_s: Math.round(EVENTS / ingestS),
      usage_ingest_s: Number(ingestS.toFixed(2)),
      usage_records: INSTANCES,
      queue_fill_s: Number(fillS.toFixed(2)),
      buyers: BUYERS,
      close_month_s: Number(closeS.toFixed(2)),
      invoices: Number(invoices.n),
      invoiced_total: invoices.total,
    };
  } finally {
    await client.close().catch(() => undefined);
    if (service) await stopChild(service);
    await queue.close();
    await db.drop();
    await keys.cleanup();
  }
}

type Prisma = Awaited<ReturnType<typeof createTestDatabase>>['prisma'];

/**
 * Ten products of ten sellers, each priced on two instance types; one subscription per buyer,
 * begun in November and already in its December period (so the subscription sweep has nothing to do).
 */
async function seed(prisma: Prisma): Promise<void> {
  for (let p = 0; p < PRODUCTS; p++) {
    await prisma.productPricing.create({
      data: {
        id: productCode(p),
        sellerId: sellerId(p),
        currency: 'USD',
        monthlyFee: '5',
        signUpFee: '1',
        instanceTypes: {
          create: [
            { instanceType: 't3.micro', markupKind: 'amount', markup: '0.004' },
            { instanceType: 'm5.large', markupKind: 'percent', markup: '20' },
          ],
        },
      },
    });
  }
  await prisma.$executeRaw`
    INSERT INTO billing.subscription (id, account_id, product_code, seller_id, status, current_period_start, current_period_end, created_at, updated_at)
    SELECT 'sub-' || lpad(to_hex(n), 17, '0'), lpad((1000000000 + n)::text, 12, '0'), 'prod-bench' || lpad((n % ${PRODUCTS})::text, 15, '0'),
           (900000000000 + n % ${PRODUCTS})::text, 'active', ${new Date(Date.UTC(2026, 11, 1))}, ${new Date(Date.UTC(2027, 0, 1))}, t, t
      FROM generate_series(0, ${BUYERS - 1}) AS n, LATERAL (SELECT ${new Date(MONTH_START)}::timestamptz + (n % 28) * interval '1 day' AS t) s`;
}

runIfMain(import.meta.url, run);
