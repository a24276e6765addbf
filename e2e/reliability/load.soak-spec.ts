import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@imagemart/testing';
import { BillingPattern } from '@imagemart/contracts';
import { monthLabel, monthStart, PlatformClock } from '../support/clock.js';
import { http, Platform, type TestAccount } from '../support/platform.js';
import { ReliabilityRecorder } from './reliability-report.js';

/**
 * The mixed load: browse, search, launch, terminate and small uploads at a fixed rate for a fixed
 * time (open loop: a slow answer does not slow the next request down). Errors must be zero, and
 * afterwards the usage billing metered equals, to the micro-unit, what the instances ran; then the
 * month is closed and every buyer's invoice totals what was metered, to the micro-unit. The
 * processes run on the last day of the previous month (e2e/support/clock.ts), so the test can
 * move their calendar past the month's end to close it.
 */
const RATE = Number(process.env['LOAD_RATE'] ?? 20);
const SECONDS = Number(process.env['LOAD_SECONDS'] ?? 60);
const BUYERS = 4;
const INSTANCE_TYPE = 't3.micro';

let platform: Platform;
let base: string;
let seller: TestAccount;
let buyers: TestAccount[];
let imageId: string;
let clock: PlatformClock;
const MINUTE = 60_000;
const boundary = monthStart(new Date());
const month = monthLabel(new Date(boundary.getTime() - 1));
const report = new ReliabilityRecorder('load');

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A small raw image through the real upload, bundle and verify path, made public. */
async function publishImage(name: string): Promise<string> {
  const data = randomBytes(256 * 1024);
  const created = await http(base, 'POST', '/v1/uploads', {
    key: seller.key,
    body: { name, architecture: 'x86_64', size: data.length, sha256: sha256(data) },
  });
  if (created.status !== 201) throw new Error(`upload create answered ${created.status}: ${JSON.stringify(created.body)}`);
  const { uploadId, imageId: id } = created.body as { uploadId: string; imageId: string };
  const put = await fetch(`${base}/v1/uploads/${uploadId}/parts/1`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${seller.key}`, 'content-type': 'application/octet-stream' },
    body: data,
  });
  if (put.status !== 200) throw new Error(`part put answered ${put.status}: ${await put.text()}`);
  const done = await http(base, 'POST', `/v1/uploads/${uploadId}/complete`, { key: seller.key });
  if (done.status !== 200) throw new Error(`complete answered ${done.status}: ${JSON.stringify(done.body)}`);
  return id;
}

beforeAll(async () => {
  // The run and its draining fit in the last hours of the previous month; the test closes it.
  clock = new PlatformClock(new Date(boundary.getTime() - 6 * 60 * MINUTE));
  platform = await Platform.start(
    'load',
    { ...clock.env(), RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '0', RATE_LIMIT_PER_KEY_PER_MINUTE: '0' },
    { billing: { MONTH_CLOSE_INTERVAL_MS: '0' } },
  );
  base = platform.baseUrl;
  seller = await platform.createAccount(['seller']);
  buyers = await Promise.all(Array.from({ length: BUYERS }, () => platform.createAccount(['buyer'])));
  imageId = await publishImage(`load-image-${randomUUID().slice(0, 8)}`);
  await waitFor(async () => (await http(base, 'GET', `/v1/images/${imageId}`, { key: seller.key })).body.state === 'available', {
    timeoutMs: 60_000,
    what: 'the load image to be available',
  });
  const shared = await http(base, 'PATCH', `/v1/images/${imageId}/launch-permission`, { key: seller.key, body: { add: [{ group: 'all' }] } });
  expect(shared.status).toBe(200);
  await waitFor(async () => (await http(base, 'GET', `/v1/images/${imageId}`, { key: buyers[0].key })).status === 200, {
    what: 'the image to be public',
  });
}, 180_000);

afterAll(async () => {
  await platform?.stop();
  clock?.remove();
});

type Op = 'browse' | 'search' | 'launch' | 'terminate' | 'upload';
const MIX: Op[] = ['browse', 'browse', 'browse', 'browse', 'search', 'search', 'search', 'launch', 'launch', 'terminate', 'terminate', 'upload'];

describe('mixed load', () => {
  it(`${RATE} requests/s for ${SECONDS} s: no errors, and metered usage equals what ran`, async () => {
    const running = new Map<string, string[]>(buyers.map((b) => [b.key, []]));
    const launched = new Map<string, string[]>(buyers.map((b) => [b.key, []]));
    const errors: string[] = [];
    const counts: Record<Op, number> = { browse: 0, search: 0, launch: 0, terminate: 0, upload: 0 };
    let uploads = 0;

    const run = async (op: Op, buyer: TestAccount): Promise<void> => {
      counts[op]++;
      const fail = (what: string) => errors.push(`${op}: ${what}`);
      try {
        if (op === 'browse') {
          const res = await http(base, 'GET', '/v1/images?limit=20', { key: buyer.key });
          if (res.status !== 200) fail(`${res.status} ${JSON.stringify(res.body)}`);
        } else if (op === 'search') {
          const res = await http(base, 'GET', '/v1/images?q=load&limit=20');
          if (res.status !== 200) fail(`${res.status} ${JSON.stringify(res.body)}`);
        } else if (op === 'launch') {
          const res = await http(base, 'POST', '/v1/instances', { key: buyer.key, body: { imageId, instanceType: INSTANCE_TYPE, count: 1 } });
          if (res.status !== 201) return void fail(`${res.status} ${JSON.stringify(res.body)}`);
          const id = (res.body.instances as { instanceId: string }[])[0].instanceId;
          running.get(buyer.key)!.push(id);
          launched.get(buyer.key)!.push(id);
        } else if (op === 'terminate') {
          const id = running.get(buyer.key)!.shift();
          if (!id) return void (counts.terminate -= 1);
          const res = await http(base, 'POST', `/v1/instances/${id}/terminate`, { key: buyer.key });
          if (res.status !== 200) fail(`${res.status} ${JSON.stringify(res.body)}`);
        } else {
          const data = randomBytes(16 * 1024);
          const res = await http(base, 'POST', '/v1/uploads', {
            key: seller.key,
            body: { name: `load-upload-${++uploads}-${randomUUID().slice(0, 6)}`, architecture: 'arm64', size: data.length, sha256: sha256(data) },
          });
          if (res.status !== 201) return void fail(`${res.status} ${JSON.stringify(res.body)}`);
          const put = await fetch(`${base}/v1/uploads/${res.body.uploadId}/parts/1`, {
            method: 'PUT',
            headers: { authorization: `Bearer ${seller.key}`, 'content-type': 'application/octet-stream' },
            body: data,
          });
          if (put.status !== 200) return void fail(`part ${put.status} ${await put.text()}`);
          const done = await http(base, 'POST', `/v1/uploads/${res.body.uploadId}/complete`, { key: seller.key });
          if (done.status !== 200) fail(`complete ${done.status} ${JSON.stringify(done.body)}`);
        }
      } catch (err) {
        fail((err as Error).message);
      }
    };

    const inFlight: Promise<void>[] = [];
    const started = performance.now();
    const total = RATE * SECONDS;
    for (let i = 0; i < total; i++) {
      const due = started + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      // Each round of the mix goes to one buyer, so that its launches and terminations balance.
      inFlight.push(run(MIX[i % MIX.length], buyers[Math.floor(i / MIX.length) % BUYERS]));
    }
    await Promise.all(inFlight);
    const elapsedS = (performance.now() - started) / 1000;

    // Every instance still running is terminated; then billing must have metered each one.
    for (const buyer of buyers) {
      for (const id of running.get(buyer.key)!.splice(0)) {
        const res = await http(base, 'POST', `/v1/instances/${id}/terminate`, { key: buyer.key });
        if (res.status !== 200) errors.push(`final terminate: ${res.status} ${JSON.stringify(res.body)}`);
      }
    }
    report.add(
      { load_errors: errors.length },
      { name: 'load', value: { rate: RATE, seconds: SECONDS, elapsed_s: Math.round(elapsedS * 10) / 10, requests: counts, errors: errors.slice(0, 10) } },
    );
    expect(errors.slice(0, 10)).toEqual([]);

    let metered = 0;
    const meteredTotals = new Map<string, bigint>();
    for (const buyer of buyers) {
      const ids = launched.get(buyer.key)!;
      // Wait until every instance is terminated and its final state reached billing.
      const instances = await waitFor(
        async () => {
          const page = await http(base, 'GET', `/v1/instances?limit=100`, { key: buyer.key });
          const items = page.body.items as { instanceId: string; state: string; runningAt: string | null; stoppedAt: string | null }[];
          return items.filter((i) => ids.includes(i.instanceId)).every((i) => i.state === 'terminated') ? items : undefined;
        },
        { timeoutMs: 60_000, what: 'every instance to be terminated' },
      );
      const ran = instances.filter((i) => ids.includes(i.instanceId) && i.runningAt && i.stoppedAt);
      const expectedSeconds = ran.reduce((sum, i) => sum + Math.max(60, billedSeconds(i.runningAt!, i.stoppedAt!)), 0);
      const usage = await waitFor(
        async () => {
          const res = await http(base, 'GET', '/v1/usage', { key: buyer.key });
          const lines = res.body.lines as { instances: number; seconds: number; amount: string; hourly: string }[];
          const seconds = lines.reduce((s, l) => s + l.seconds, 0);
          return seconds === expectedSeconds ? res.body : undefined;
        },
        { timeoutMs: 60_000, what: `billing to meter ${expectedSeconds} s for ${ran.length} instances` },
      );
      const lines = usage.lines as { seconds: number; amount: string; hourly: string }[];
      // Each line's amount is its seconds at its hourly price, to the micro-unit (half up); the total is their sum.
      let total = 0n;
      for (const line of lines) {
        const micros = BigInt(Math.round(Number(line.hourly) * 1e6));
        const amount = (BigInt(line.seconds) * micros * 2n + 3600n) / 7200n;
        expect(toMicros(line.amount)).toBe(amount);
        total += amount;
      }
      expect(toMicros(usage.total as string)).toBe(total);
      meteredTotals.set(buyer.key, total);
      metered += ran.length;
    }
    report.add({}, { name: 'metered_instances', value: metered });
    expect(metered).toBeGreaterThan(0);

    // The month ends; closing it bills each buyer exactly what was metered.
    await clock.jumpTo(new Date(boundary.getTime() + 1000));
    const closed = await platform.rpc<{ buyers: number; invoices: number }>('billing', BillingPattern.invoicesCloseMonth, { month }, 60);
    expect(closed).toMatchObject({ buyers: buyers.filter((b) => (meteredTotals.get(b.key) ?? 0n) > 0n).length });
    let invoiced = 0n;
    for (const buyer of buyers) {
      const list = await http(base, 'GET', '/v1/invoices', { key: buyer.key });
      const invoices = (list.body.items as { period: string; kind: string; total: string }[]).filter((i) => i.period === month);
      const total = invoices.reduce((sum, i) => sum + toMicros(i.total), 0n);
      expect(total, `the invoice of ${buyer.id} for ${month}`).toBe(meteredTotals.get(buyer.key) ?? 0n);
      invoiced += total;
    }
    report.add({}, { name: 'invoiced_micros', value: Number(invoiced) });
  }, 900_000);
});

/** Seconds between two instants as billing counts them: both cut to the whole second (docs/pricing.md). */
function billedSeconds(from: string, to: string): number {
  return Math.floor(Date.parse(to) / 1000) - Math.floor(Date.parse(from) / 1000);
}

function toMicros(decimal: string): bigint {
  const [whole, frac = ''] = decimal.split('.');
  return BigInt(whole) * 1_000_000n + BigInt(frac.padEnd(6, '0').slice(0, 6));
}
