import { randomBytes, randomUUID, createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { CatalogPattern, EventQueue } from '@imagemart/contracts';
import { waitFor } from '@imagemart/testing';
import { OwnPostgres, OwnRedis } from '../support/own-servers.js';
import { http, Platform, type TestAccount } from '../support/platform.js';
import { ReliabilityRecorder } from './reliability-report.js';

/**
 * Faults, injected into a platform that runs on a PostgreSQL and a Redis of this file's own:
 * Redis and PostgreSQL crash and come back, a service dies while requests flow to it, billing dies
 * while instances are launched and terminated, the bundler worker is killed in the middle of a
 * bundle. After each the platform must recover by itself, lose no job and no event, and answer
 * every request within its timeout meanwhile.
 */
const RPC_TIMEOUT_MS = 2000;
/** What a request may take at most while a fault is in place: its RPC budget plus slack for a loaded machine. */
const HANG_LIMIT_MS = RPC_TIMEOUT_MS + 3000;

let pg: OwnPostgres;
let redis: OwnRedis;
let platform: Platform;
let base: string;
let seller: TestAccount;
let buyer: TestAccount;
const report = new ReliabilityRecorder('faults');

beforeAll(async () => {
  [pg, redis] = await Promise.all([OwnPostgres.start(), OwnRedis.start()]);
  platform = await Platform.start(
    'faults',
    { RPC_TIMEOUT_MS: String(RPC_TIMEOUT_MS), BUNDLER_LOCK_DURATION_MS: '3000', BUNDLER_STALLED_INTERVAL_MS: '2000' },
    {},
    { databaseUrl: pg.url, redisUrl: redis.url },
  );
  base = platform.baseUrl;
  [seller, buyer] = await Promise.all([platform.createAccount(['seller']), platform.createAccount(['buyer'])]);
}, 120_000);

afterAll(async () => {
  await platform?.stop().catch(() => undefined);
  await Promise.all([pg?.destroy(), redis?.destroy()]);
});

interface Sample {
  status: number;
  ms: number;
}

/** Requests in a loop until stopped, each timed; a request that throws counts as status 0. */
function flow(request: () => Promise<number>): { stop: () => Promise<Sample[]>; samples: Sample[] } {
  const samples: Sample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      const status = await request().catch(() => 0);
      samples.push({ status, ms: performance.now() - started });
      await sleep(20);
    }
  })();
  return {
    samples,
    stop: async () => {
      running = false;
      await loop;
      return samples;
    },
  };
}

const browse = () => http(base, 'GET', '/v1/images?owner=self', { key: seller.key }).then((r) => r.status);

async function registerImage(name: string, requestId?: string): Promise<{ status: number; imageId?: string }> {
  const res = await http(base, 'POST', '/v1/images', {
    key: seller.key,
    body: { name, architecture: 'x86_64' },
    ...(requestId ? { headers: { 'x-request-id': requestId } } : {}),
  });
  return { status: res.status, imageId: res.body?.imageId as string | undefined };
}

async function makeAvailable(imageId: string): Promise<void> {
  await platform.rpc('catalog', CatalogPattern.imageSetState, { imageId, state: 'available', imageSize: 1 << 20 });
}

/** A small raw image through the real upload, bundle and verify path: a bundle the simulated host can start. */
async function publishedImage(name: string): Promise<string> {
  const data = randomBytes(256 * 1024);
  const created = await http(base, 'POST', '/v1/uploads', {
    key: seller.key,
    body: { name, architecture: 'x86_64', size: data.length, sha256: createHash('sha256').update(data).digest('hex') },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const { uploadId, imageId } = created.body as { uploadId: string; imageId: string };
  const put = await fetch(`${base}/v1/uploads/${uploadId}/parts/1`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${seller.key}`, 'content-type': 'application/octet-stream' },
    body: data,
  });
  expect(put.status, await put.clone().text()).toBe(200);
  expect((await http(base, 'POST', `/v1/uploads/${uploadId}/complete`, { key: seller.key })).status).toBe(200);
  await waitFor(async () => (await http(base, 'GET', `/v1/images/${imageId}`, { key: seller.key })).body.state === 'available', {
    timeoutMs: 60_000,
    what: `${name} to be available`,
  });
  return imageId;
}

/** Seconds between two instants as billing counts them: both cut to the whole second (docs/pricing.md). */
function billedSeconds(from: string, to: string): number {
  return Math.floor(Date.parse(to) / 1000) - Math.floor(Date.parse(from) / 1000);
}

const buyerSees = async (imageId: string) => (await http(base, 'GET', `/v1/images/${imageId}`, { key: buyer.key })).status === 200;

/** The platform is healthy again and answers reads, without any process restarted. */
async function recovered(what: string): Promise<void> {
  await waitFor(async () => (await fetch(`${base}/health`).catch(() => undefined))?.status === 200, { timeoutMs: 60_000, intervalMs: 250, what });
  await waitFor(async () => (await browse()) === 200, { timeoutMs: 30_000, intervalMs: 250, what: `${what}: reads answer 200` });
}

/** Every request made while the fault was in place answered (or failed) within its budget. */
function expectNoHang(samples: Sample[]): void {
  const slowest = Math.max(0, ...samples.map((s) => s.ms));
  report.add({ slowest_request_during_fault_ms: Math.round(slowest) });
  expect(slowest, `slowest request ${Math.round(slowest)} ms`).toBeLessThan(HANG_LIMIT_MS);
}

describe('faults', () => {
  it('Redis crashes and restarts: requests fail fast meanwhile, queued events survive, the platform recovers by itself', async () => {
    const { imageId } = await registerImage(`redis-fault-${randomUUID().slice(0, 8)}`);
    await makeAvailable(imageId!);
    expect(await buyerSees(imageId!)).toBe(false);

    // The catalog's event queue is paused, so the permission change's event waits in Redis.
    const catalogEvents = new Queue(EventQueue.catalog, { connection: { url: redis.url }, prefix: platform.env['REDIS_PREFIX'] });
    catalogEvents.on('error', () => undefined); // while Redis is away
    await catalogEvents.pause();
    const shared = await http(base, 'PATCH', `/v1/images/${imageId}/launch-permission`, { key: seller.key, body: { add: [{ group: 'all' }] } });
    expect(shared.status, JSON.stringify(shared.body)).toBe(200);
    // A paused queue keeps its jobs waiting.
    const queued = () => catalogEvents.getWaitingCount();
    await waitFor(async () => (await queued()) > 0, { what: 'the event to wait in the paused queue' });

    const load = flow(browse);
    await sleep(300);
    await redis.crash();
    report.add({ faults_injected: 1 });
    try {
      await sleep(3000);
    } finally {
      await redis.resume();
    }
    await recovered('the platform after a Redis restart');
    const samples = await load.stop();
    expectNoHang(samples);
    expect(samples.some((s) => s.status !== 200), 'requests failed while Redis was away').toBe(true);
    // The queue kept its event through the crash.
    expect(await queued()).toBeGreaterThan(0);
    await catalogEvents.resume();
    await catalogEvents.close();

    // The event queued before the crash reaches the restarted catalog: the image is public now.
    const delivered = await waitFor(async () => buyerSees(imageId!), { timeoutMs: 30_000, what: 'the queued event to be applied' }).then(
      () => true,
      () => false,
    );
    report.add({ events_lost: delivered ? 0 : 1 });
    expect(delivered).toBe(true);
    report.add({ faults_recovered: 1 });
  }, 180_000);

  it('PostgreSQL crashes and restarts: nothing acknowledged is lost, and the services reconnect by themselves', async () => {
    const before = await registerImage(`pg-fault-before-${randomUUID().slice(0, 8)}`);
    expect(before.status).toBe(201);
    const load = flow(browse);
    await sleep(300);
    await pg.crash();
    report.add({ faults_injected: 1 });
    let during: { status: number };
    try {
      // A write while the database is away: an error, not a hang.
      during = await registerImage(`pg-fault-during-${randomUUID().slice(0, 8)}`);
      await sleep(2000);
    } finally {
      await pg.resume();
    }
    expect(during.status).toBeGreaterThanOrEqual(500);
    await recovered('the platform after a PostgreSQL restart');
    const samples = await load.stop();
    expectNoHang(samples);

    // What was acknowledged before the crash is there; writes work again, on every service.
    expect((await http(base, 'GET', `/v1/images/${before.imageId}`, { key: seller.key })).status).toBe(200);
    const after = await registerImage(`pg-fault-after-${randomUUID().slice(0, 8)}`);
    expect(after.status).toBe(201);
    const account = await platform.createAccount(['buyer']);
    expect(account.key).toMatch(/^imk_/);
    report.add({ faults_recovered: 1 });
  }, 180_000);

  it('a service dies while requests flow to it: 504 within the budget, and a retry with the same request id registers once', async () => {
    const load = flow(browse);
    await sleep(300);
    await platform.process('catalog').stop('SIGKILL');
    report.add({ faults_injected: 1 });
    const requestId = `retry-${randomUUID()}`;
    const name = `service-fault-${randomUUID().slice(0, 8)}`;
    let during: { status: number };
    try {
      during = await registerImage(name, requestId);
      await sleep(1000);
    } finally {
      platform.startProcess('catalog');
    }
    expect(during.status).toBe(504);
    await recovered('the platform after the catalog came back');
    const samples = await load.stop();
    expectNoHang(samples);
    expect(samples.filter((s) => s.status !== 200 && s.status !== 504), JSON.stringify(samples.filter((s) => s.status !== 200))).toEqual([]);

    // The client retries with its request id: one image, whatever became of the first attempt.
    const retried = await registerImage(name, requestId);
    expect([200, 201]).toContain(retried.status);
    const again = await registerImage(name, requestId);
    expect(again.imageId).toBe(retried.imageId);
    const mine = await http(base, 'GET', `/v1/images?owner=self&name=${encodeURIComponent(name)}`, { key: seller.key });
    expect(mine.status).toBe(200);
    expect((mine.body.items as { name: string }[]).filter((i) => i.name === name)).toHaveLength(1);
    report.add({ faults_recovered: 1 });
  }, 180_000);

  it('billing is killed and restarted while launches and terminations flow: every run is metered once, none lost', async () => {
    const imageId = await publishedImage(`billing-fault-${randomUUID().slice(0, 8)}`);
    const shared = await http(base, 'PATCH', `/v1/images/${imageId}/launch-permission`, { key: seller.key, body: { add: [{ group: 'all' }] } });
    expect(shared.status, JSON.stringify(shared.body)).toBe(200);
    await waitFor(async () => buyerSees(imageId), { timeoutMs: 30_000, what: 'the image to be public' });

    // A buyer's launches and terminations, paced under the launch rate limit, at most 3 running at once.
    const launched: string[] = [];
    const running: string[] = [];
    const samples: Sample[] = [];
    const answers: string[] = [];
    /** What was answered while billing was down: a termination then is metered only by the restarted process. */
    const whileDown: string[] = [];
    let down = false;
    let flowing = true;
    const timed = async (what: string, request: () => ReturnType<typeof http>) => {
      const started = performance.now();
      const res = await request().catch(() => ({ status: 0, body: undefined }));
      samples.push({ status: res.status, ms: performance.now() - started });
      answers.push(`${what} ${res.status}`);
      if (down) whileDown.push(`${what} ${res.status}`);
      return res;
    };
    const loop = (async () => {
      while (flowing) {
        if (running.length >= 3 || (running.length > 0 && launched.length % 2 === 0)) {
          const id = running.shift()!;
          const res = await timed('terminate', () => http(base, 'POST', `/v1/instances/${id}/terminate`, { key: buyer.key }));
          if (res.status !== 200) running.unshift(id); // tried again on the next turn
        }
        const res = await timed('launch', () =>
          http(base, 'POST', '/v1/instances', { key: buyer.key, body: { imageId, instanceType: 't3.micro', count: 1 } }),
        );
        if (res.status === 201) {
          const id = (res.body.instances as { instanceId: string }[])[0].instanceId;
          launched.push(id);
          running.push(id);
        }
        await sleep(300);
      }
    })();

    await sleep(3000);
    await platform.process('billing').stop('SIGKILL');
    down = true;
    report.add({ faults_injected: 1 });
    try {
      await sleep(3000);
    } finally {
      platform.startProcess('billing');
    }
    await waitFor(async () => (await fetch(`${base}/health`).catch(() => undefined))?.status === 200, { timeoutMs: 60_000, intervalMs: 250, what: 'billing to be back' });
    down = false;
    await recovered('the platform after billing came back');
    await sleep(3000);
    flowing = false;
    await loop;
    expectNoHang(samples);
    // Launches need billing's prices: while it was away they fail within the budget, and nothing else fails.
    expect(answers.filter((a) => !/^(launch (201|503|504)|terminate 200)$/.test(a)), answers.join(', ')).toEqual([]);
    for (const id of running.splice(0)) {
      expect((await http(base, 'POST', `/v1/instances/${id}/terminate`, { key: buyer.key })).status).toBe(200);
    }
    expect(launched.length).toBeGreaterThan(5);
    expect(whileDown, 'a termination while billing was away').toContain('terminate 200');

    // Every instance ends terminated; billing then meters each run once, by the rule: per second, at least 60 s.
    const instances = await waitFor(
      async () => {
        const page = await http(base, 'GET', '/v1/instances?limit=100', { key: buyer.key });
        const items = (page.body.items as { instanceId: string; state: string; runningAt: string | null; stoppedAt: string | null }[]).filter((i) =>
          launched.includes(i.instanceId),
        );
        return items.length === launched.length && items.every((i) => i.state === 'terminated') ? items : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'every instance to be terminated' },
    );
    const ran = instances.filter((i) => i.runningAt && i.stoppedAt);
    expect(ran.length, 'instances that ran').toBeGreaterThan(0);
    const expectedSeconds = ran.reduce((sum, i) => sum + Math.max(60, billedSeconds(i.runningAt!, i.stoppedAt!)), 0);
    const meter = async () => {
      const res = await http(base, 'GET', '/v1/usage', { key: buyer.key });
      const lines = (res.body.lines ?? []) as { instances: number; seconds: number }[];
      return { seconds: lines.reduce((s, l) => s + l.seconds, 0), instances: lines.reduce((s, l) => s + l.instances, 0) };
    };
    // Jobs the killed process held come back once their lock expires (BullMQ's stalled-job check).
    const metered = await waitFor(async () => ((await meter()).seconds === expectedSeconds ? meter() : undefined), {
      timeoutMs: 120_000,
      intervalMs: 500,
      what: `billing to meter ${expectedSeconds} s for ${ran.length} runs`,
    }).catch(() => meter());
    report.add({ events_lost: metered.seconds < expectedSeconds ? 1 : 0 });
    expect(metered).toEqual({ seconds: expectedSeconds, instances: ran.length });
    // Still so a moment later: nothing arrives twice.
    await sleep(2000);
    expect(await meter()).toEqual(metered);
    report.add({ faults_recovered: 1 }, { name: 'billing_restart', value: { launched: launched.length, ran: ran.length, seconds: expectedSeconds, whileDown } });
  }, 300_000);

  it('the bundler worker is killed in the middle of a bundle: the job is retried and the image ends available', async () => {
    const image = Buffer.concat([randomBytes(96 << 20), Buffer.alloc(96 << 20, 7)]);
    const sha256 = createHash('sha256').update(image).digest('hex');
    const created = await http(base, 'POST', '/v1/uploads', {
      key: seller.key,
      body: { name: `worker-fault-${randomUUID().slice(0, 8)}`, architecture: 'x86_64', size: image.length, sha256 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { uploadId, imageId, partSize, partCount } = created.body as { uploadId: string; imageId: string; partSize: number; partCount: number };
    for (let n = 1; n <= partCount; n++) {
      const part = image.subarray((n - 1) * partSize, n * partSize);
      const res = await fetch(`${base}/v1/uploads/${uploadId}/parts/${n}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${seller.key}`, 'content-type': 'application/octet-stream' },
        body: part,
      });
      expect(res.status, await res.clone().text()).toBe(200);
    }
    expect((await http(base, 'POST', `/v1/uploads/${uploadId}/complete`, { key: seller.key })).status).toBe(200);

    // Kill it once the bundle is under way, then start another worker.
    await waitFor(
      async () => {
        const p = await http(base, 'GET', `/v1/images/${imageId}/bundle`, { key: seller.key });
        return p.body.state === 'pending' && p.body.percent > 0;
      },
      { timeoutMs: 60_000, intervalMs: 20, what: 'the bundle to be under way' },
    );
    await platform.process('bundler-worker').stop('SIGKILL');
    report.add({ faults_injected: 1 });
    platform.startProcess('bundler-worker');

    const available = await waitFor(
      async () => {
        const res = await http(base, 'GET', `/v1/images/${imageId}`, { key: seller.key });
        if (res.body.state === 'failed') throw new Error(`the image failed: ${JSON.stringify(res.body)}`);
        return res.body.state === 'available';
      },
      { timeoutMs: 90_000, intervalMs: 250, what: 'the image to become available after the worker was killed' },
    ).then(
      () => true,
      () => false,
    );
    report.add({ jobs_lost: available ? 0 : 1 });
    expect(available).toBe(true);
    const res = await http(base, 'GET', `/v1/images/${imageId}`, { key: seller.key });
    expect(res.body).toMatchObject({ state: 'available', imageSize: image.length });
    report.add({ faults_recovered: 1 });
  }, 240_000);
});
