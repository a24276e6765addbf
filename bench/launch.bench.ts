/**
 * Launch requests end to end: `POST /v1/instances` through storefront-api (API key), the
 * catalog (rate and running-instance quotas, billing's instance types, the permission service's
 * launch decision, the reservation and instance rows, one usage event per instance and one host
 * job in the outbox, the image's launch tally), with the built processes. 100 buyers with API
 * keys launch one instance at a time of one of 10 public images that have real bundles in a
 * filesystem object store, so the simulated host brings every instance to running meanwhile (its
 * jobs and their events share the machine with the launches). After a warm-up at FIXED_RATE, two runs of
 * DURATION_S seconds over 100 connections: launches sent at FIXED_RATE a second on schedule
 * (latency, timed from when each was due), then as fast as the connections get answers (the most
 * it sustains). Every answer must be 201 with one pending instance.
 *
 * The quotas are raised for the run (INSTANCE_RUNNING_LIMIT, INSTANCE_LAUNCH_BURST and
 * INSTANCE_LAUNCH_REFILL_PER_SECOND): the point is the cost of a launch, not the limits.
 *
 * Standalone: `node --import tsx bench/launch.bench.ts` from the repository root (builds first;
 * `BENCH_NO_BUILD=1` runs the processes already built in dist/).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { bundle, exportKeyPem, generatePlatformKeys, keyFingerprint } from '@imagemart/bundle-format';
import { BundleKeys, CatalogPattern, type SigningProcess } from '@imagemart/contracts';
import { createRpcClient, sendRpc } from '@imagemart/messaging';
import { createObjectStore } from '@imagemart/object-store';
import { createTestDatabase, createTestRedisPrefix, TestIdentities, waitFor } from '@imagemart/testing';
import { openLoop } from './support/open-loop.js';
import { childNodeArgs, runIfMain, stopChild } from './support/process.js';

const CONNECTIONS = 100;
/** The goal's rate: latency is measured with requests sent at this rate, on schedule. */
const FIXED_RATE = 200;
const DURATION_S = 20;
/** Long enough that the processes' code is optimised and the warm-up's backlog is gone before the measured run. */
const WARMUP_S = 10;
const BUYERS = 100;
const IMAGES = 10;

const root = fileURLToPath(new URL('../', import.meta.url));
const SELLER_ID = '100000000001';
const SELLER_KEY = `imk_bench-launch-seller-${'s'.repeat(24)}`;
const buyerId = (b: number) => String(300000000000 + b);
const buyerKey = (b: number) => `imk_bench-launch-buyer-${String(b).padStart(4, '0')}-${'b'.repeat(20)}`;

export async function run(): Promise<Record<string, unknown>> {
  if (process.env['BENCH_NO_BUILD'] !== '1') execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const db = await createTestDatabase('bench_launch');
  const redis = createTestRedisPrefix('bench-launch');
  const storeRoot = await mkdtemp(path.join(tmpdir(), 'imagemart-bench-launch-'));
  const running = new Map<string, ChildProcess>();
  const catalog = createRpcClient('catalog', {
    connection: redis.url,
    prefix: redis.prefix,
    timeoutMs: 10_000,
    signer: TestIdentities.shared().asAllowedSender(),
  });
  try {
    await seedAccounts(db.url);
    const keys = await generatePlatformKeys();
    const port = await freePort();
    const env = {
      PATH: process.env['PATH'] ?? '',
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      RPC_TIMEOUT_MS: '5000',
      OBJECT_STORE_ROOT: storeRoot,
      PLATFORM_SIGNING_PUBLIC_KEY_PEM: exportKeyPem(keys.signing.publicKey),
      INSTANCE_RUNNING_LIMIT: '1000000',
      INSTANCE_LAUNCH_BURST: '1000000',
      INSTANCE_LAUNCH_REFILL_PER_SECOND: '1000000',
      // The gateway's limits stay on (their Redis work is measured) but never trigger.
      RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '10000000',
      RATE_LIMIT_PER_KEY_PER_MINUTE: '10000000',
    };
    for (const name of ['permission', 'billing', 'catalog', 'storefront-api']) {
      running.set(name, spawn(process.execPath, [...childNodeArgs(), `dist/apps/${name}/src/main.js`], { cwd: root, env: { ...env, ...TestIdentities.shared().env(name as SigningProcess) }, stdio: ['ignore', 'ignore', 'inherit'] }));
    }
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => ((await fetch(`${base}/v1/pricing/instance-types`).catch(() => undefined))?.status === 200 ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: 'storefront-api',
    });
    await catalog.connect();

    // Public images with real bundles: registered through the API, bundled here, made available
    // as the publishing flow does, and shared with everyone.
    const store = await createObjectStore({ driver: 'fs', root: storeRoot });
    const imageIds: string[] = [];
    for (let i = 0; i < IMAGES; i++) {
      const res = await fetch(`${base}/v1/images`, {
        method: 'POST',
        headers: { authorization: `Bearer ${SELLER_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `bench launch image ${i}`, architecture: 'x86_64' }),
      });
      const image = (await res.json()) as { imageId: string };
      if (res.status !== 201) throw new Error(`registering an image answered ${res.status}: ${JSON.stringify(image)}`);
      const manifestKey = BundleKeys.manifest(image.imageId);
      const result = await bundle(Readable.from([Buffer.alloc(2 * 1024 * 1024, i)]), {
        image: { name: `bench launch image ${i}`, user: SELLER_ID },
        machineConfiguration: { architecture: 'x86_64' },
        platformPublicKey: keys.wrapping.publicKey,
        signingKey: keys.signing.privateKey,
        onPart: async (part) => {
          await store.put(BundleKeys.part(manifestKey, part.filename), part.data);
        },
      });
      await store.put(manifestKey, Buffer.from(result.manifestXml));
      await sendRpc(catalog, CatalogPattern.imageSetState, {
        imageId: image.imageId,
        state: 'available',
        manifestLocation: manifestKey,
        imageSize: result.imageSize,
        manifestDigest: createHash('sha256').update(result.manifestXml).digest('hex'),
        signerKeyId: keyFingerprint(keys.signing.publicKey),
      });
      const shared = await fetch(`${base}/v1/images/${image.imageId}/launch-permission`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${SELLER_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ add: [{ group: 'all' }] }),
      });
      if (shared.status !== 200) throw new Error(`sharing an image answered ${shared.status}`);
      imageIds.push(image.imageId);
    }
    await store.close();

    // One launch per image and buyer key first: every path answers 201 before the load starts.
    const launchOnce = async (b: number, imageId: string) => {
      const res = await fetch(`${base}/v1/instances`, {
        method: 'POST',
        headers: { authorization: `Bearer ${buyerKey(b)}`, 'content-type': 'application/json' },
        body: JSON.stringify({ imageId, instanceType: 't3.micro' }),
      });
      if (res.status !== 201) throw new Error(`a launch answered ${res.status}: ${await res.text()}`);
      return (await res.json()) as { instances: { instanceId: string }[] };
    };
    for (const imageId of imageIds) await launchOnce(0, imageId);
    const first = await launchOnce(1, imageIds[0]);
    const firstId = first.instances[0].instanceId;
    await waitFor(
      async () => {
        const res = await fetch(`${base}/v1/instances/${firstId}`, { headers: { authorization: `Bearer ${buyerKey(1)}` } });
        const view = (await res.json()) as { state: string };
        if (view.state === 'terminated') throw new Error(`the simulated host refused the bundle: ${JSON.stringify(view)}`);
        return view.state === 'running';
      },
      { timeoutMs: 30_000, what: 'the first instance to run' },
    );

    const bad = { count: 0, sample: '' };
    const load = (duration: number) =>
      autocannon({
        url: `${base}/v1/instances`,
        connections: CONNECTIONS,
        duration,
        method: 'POST',
        requests: [
          {
            setupRequest: (req) => {
              const b = Math.floor(Math.random() * BUYERS);
              const imageId = imageIds[Math.floor(Math.random() * imageIds.length)];
              return {
                ...req,
                headers: { ...req.headers, authorization: `Bearer ${buyerKey(b)}`, 'content-type': 'application/json' },
                body: JSON.stringify({ imageId, instanceType: 't3.micro' }),
              };
            },
            onResponse: (status, body) => {
              if (status !== 201 || !body.includes('"state":"pending"')) {
                bad.count++;
                bad.sample ||= `${status} ${body.slice(0, 300)}`;
              }
            },
          },
        ],
      });
    // At the goal's rate: 200 launches a second over 100 client connections, on schedule. The
    // warm-up runs at the same rate, so the measured run starts with no backlog of host jobs.
    const atFixedRate = (durationS: number) =>
      openLoop({
        base,
        rate: FIXED_RATE,
        durationS,
        connections: CONNECTIONS,
        next: () => ({
          method: 'POST',
          path: '/v1/instances',
          headers: {
            authorization: `Bearer ${buyerKey(Math.floor(Math.random() * BUYERS))}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify({ imageId: imageIds[Math.floor(Math.random() * imageIds.length)], instanceType: 't3.micro' }),
        }),
        check: (status, body) => status === 201 && body.includes('"state":"pending"'),
      });
    const warmup = await atFixedRate(WARMUP_S);
    if (warmup.errors > 0) throw new Error(`the warm-up had ${warmup.errors} bad answers: ${warmup.sample}`);
    console.error(`fixed-rate run: ${FIXED_RATE}/s for ${DURATION_S} s from ${new Date().toISOString()}`);
    const fixed = await atFixedRate(DURATION_S);
    console.error(`fixed-rate run: ended ${new Date().toISOString()}`);
    if (fixed.sample) console.error(`first bad answer at the fixed rate: ${fixed.sample}`);
    // The most it sustains: 100 connections, each sending its next launch as soon as one is answered.
    const before = await counts(db.url);
    const measured = await load(DURATION_S);
    const after = await counts(db.url);
    // The host keeps up: wait for the instances launched to be running.
    const drainStarted = Date.now();
    await waitFor(async () => (await counts(db.url)).pending === 0, { timeoutMs: 120_000, intervalMs: 500, what: 'the host to start every instance' });
    const drained = await counts(db.url);

    const errors = measured.errors + measured.timeouts + measured.non2xx + bad.count;
    if (bad.sample) console.error(`first bad answer: ${bad.sample}`);
    return {
      concurrency: CONNECTIONS,
      duration_s: DURATION_S,
      warmup_s: WARMUP_S,
      fixed_rate: FIXED_RATE,
      fixed_rps: fixed.rps,
      p50_ms: fixed.p50_ms,
      p99_ms: fixed.p99_ms,
      p999_ms: fixed.p999_ms,
      max_ms: fixed.max_ms,
      fixed_errors: fixed.errors,
      rps: Math.round(measured.requests.average),
      p50_ms_saturated: measured.latency.p50,
      p99_ms_saturated: measured.latency.p99,
      saturated_errors: errors,
      errors: errors + fixed.errors,
      launches: measured.requests.total,
      instances_created: after.instances - before.instances,
      instance_changed_events_during_run: after.events - before.events,
      host_drain_ms_after_run: Date.now() - drainStarted,
      instances_running_at_end: drained.running,
      instances_terminated_at_end: drained.terminated,
      buyers: BUYERS,
      images: IMAGES,
      request: 'POST /v1/instances { imageId: one of 10 public images, instanceType: t3.micro }, a random buyer key per request',
      processes: 'permission, billing, catalog (with the simulated host), storefront-api; one replica each',
      measured: 'p50/p99 with launches sent at fixed_rate on schedule over `concurrency` connections (open loop, timed from when each was due); rps: the most sustained by `concurrency` connections each sending its next launch when one is answered',
      goals: { rps_at_least: 200, p99_ms_below: 100, errors: 0 },
    };
  } finally {
    await catalog.close();
    for (const child of running.values()) await stopChild(child);
    await db.drop();
    await redis.cleanup();
    await rm(storeRoot, { recursive: true, force: true });
  }
}

async function counts(databaseUrl: string): Promise<{ instances: number; pending: number; running: number; terminated: number; events: number }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ state: string; n: string }>(`SELECT state, count(*) AS n FROM catalog.instance GROUP BY state`);
    const by = Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
    const events = await client.query<{ n: string }>(`SELECT count(*) AS n FROM catalog.outbox_event WHERE type = 'catalog.instance.changed'`);
    return {
      instances: rows.reduce((sum, r) => sum + Number(r.n), 0),
      pending: by['pending'] ?? 0,
      running: by['running'] ?? 0,
      terminated: by['terminated'] ?? 0,
      events: Number(events.rows[0]?.n ?? 0),
    };
  } finally {
    await client.end();
  }
}

/** The seller and the buyers with their API keys, straight into the permission schema. */
async function seedAccounts(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const sha = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');
  try {
    const accounts = [
      { id: SELLER_ID, key: SELLER_KEY, role: 'seller' },
      ...Array.from({ length: BUYERS }, (_, b) => ({ id: buyerId(b), key: buyerKey(b), role: 'buyer' })),
    ];
    for (const a of accounts) {
      await client.query(
        `INSERT INTO permission.account (id, name, email, roles, status, updated_at) VALUES ($1, $2, $3, ARRAY[$4]::permission."Role"[], 'active', now())`,
        [a.id, `Bench ${a.role} ${a.id}`, `${a.id}@bench.example`, a.role],
      );
      await client.query(
        `INSERT INTO permission.api_key (id, account_id, name, prefix, hash, updated_at) VALUES ($1, $2, 'bench', $3, $4, now())`,
        [`key-${a.id.slice(-12).padStart(16, '0')}`, a.id, a.key.slice(0, 12), sha(a.key)],
      );
    }
  } finally {
    await client.end();
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

runIfMain(import.meta.url, run);
