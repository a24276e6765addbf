/**
 * RPC over the Redis Streams transport: latency of sequential calls, throughput with 100 calls in
 * flight, and the same sequential latency for a bare ioredis request/response (a list each way)
 * as the floor. The service runs in a child process, as in production. The same sequential and
 * concurrent calls again with signed callers (the gateway signs, the service verifies and checks
 * the replay guard, as every platform call does): `signed_*`.
 *
 * Standalone: `node --import tsx bench/rpc.bench.ts` from the repository root.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createRpcClient, sendRpc } from '@imagemart/messaging';
import { createTestRedisPrefix, TestIdentities } from '@imagemart/testing';
import { runIfMain, stopChild } from './support/process.js';

const SEQUENTIAL_CALLS = 2_000;
const CONCURRENT_CALLS = 10_000;
const IN_FLIGHT = 100;
const WARMUP_CALLS = 300;

const repoRoot = fileURLToPath(new URL('../', import.meta.url));

export async function run(): Promise<Record<string, number | string>> {
  // A key prefix of its own on the configured Redis, deleted afterwards.
  const keys = createTestRedisPrefix('bench-rpc');
  const { url, prefix } = keys;
  const service = 'bench';
  const children: ChildProcess[] = [];
  const client = createRpcClient(service, { connection: url, prefix, timeoutMs: 10_000 });
  const clients = [client];
  try {
    children.push(
      await startFixture('server.fixture.ts', { REDIS_URL: url, PREFIX: prefix, SERVICE: service }),
    );
    const call = () => sendRpc(client, 'bench.image.get', { imageId: 'ami-0123456789abcdef0' });

    await repeat(WARMUP_CALLS, call);
    const sequential = await repeat(SEQUENTIAL_CALLS, call);
    const started = performance.now();
    const concurrent = await inParallel(CONCURRENT_CALLS, IN_FLIGHT, call);
    const concurrentSeconds = (performance.now() - started) / 1000;

    // Signed callers: a gateway-only pattern with a person in its payload, as the platform sends it.
    const ids = TestIdentities.shared();
    children.push(
      await startFixture('server.fixture.ts', {
        REDIS_URL: url,
        PREFIX: prefix,
        SERVICE: 'catalog',
        PATTERN: 'catalog.image.get',
        SERVICE_IDENTITY_KEY: ids.env('catalog').SERVICE_IDENTITY_KEY,
      }),
    );
    const signedClient = createRpcClient('catalog', { connection: url, prefix, timeoutMs: 10_000, signer: ids.signer('storefront-api') });
    clients.push(signedClient);
    const signedCall = () =>
      sendRpc(signedClient, 'catalog.image.get', { caller: { accountId: '123456789012', roles: ['buyer'] }, imageId: 'ami-0123456789abcdef0' });
    await repeat(WARMUP_CALLS, signedCall);
    const signedSequential = await repeat(SEQUENTIAL_CALLS, signedCall);
    const signedStarted = performance.now();
    await inParallel(CONCURRENT_CALLS, IN_FLIGHT, signedCall);
    const signedSeconds = (performance.now() - signedStarted) / 1000;

    children.push(await startFixture('baseline.fixture.ts', { REDIS_URL: url, PREFIX: prefix }));
    const baseline = await measureBaseline(url, prefix);

    const p50 = percentile(sequential, 50);
    const baselineP50 = percentile(baseline, 50);
    return {
      calls_per_s: Math.round(CONCURRENT_CALLS / concurrentSeconds),
      p50_ms: round(p50),
      p99_ms: round(percentile(sequential, 99)),
      p50_ms_concurrent: round(percentile(concurrent, 50)),
      p99_ms_concurrent: round(percentile(concurrent, 99)),
      baseline_p50_ms: round(baselineP50),
      baseline_p99_ms: round(percentile(baseline, 99)),
      ratio_p50: round(p50 / baselineP50),
      signed_calls_per_s: Math.round(CONCURRENT_CALLS / signedSeconds),
      signed_p50_ms: round(percentile(signedSequential, 50)),
      signed_p99_ms: round(percentile(signedSequential, 99)),
      signed_throughput_ratio: round(CONCURRENT_CALLS / signedSeconds / (CONCURRENT_CALLS / concurrentSeconds)),
      sequential_calls: SEQUENTIAL_CALLS,
      concurrent_calls: CONCURRENT_CALLS,
      in_flight: IN_FLIGHT,
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(children.map(stopChild));
    await keys.cleanup();
  }
}

/** A bare round trip: RPUSH the request, BLPOP the reply from this caller's own list. */
async function measureBaseline(url: string, prefix: string): Promise<number[]> {
  const commands = new Redis(url);
  const replies = new Redis(url);
  const requests = `${prefix}:baseline:requests`;
  const replyTo = `${prefix}:baseline:reply:${randomUUID()}`;
  const call = async () => {
    const id = randomUUID();
    await commands.rpush(requests, JSON.stringify({ id, replyTo, imageId: 'ami-0123456789abcdef0' }));
    const item = await replies.blpop(replyTo, 10);
    if (!item || (JSON.parse(item[1]) as { id: string }).id !== id) throw new Error('baseline reply lost');
  };
  try {
    await repeat(WARMUP_CALLS, call);
    return await repeat(SEQUENTIAL_CALLS, call);
  } finally {
    commands.disconnect();
    replies.disconnect();
  }
}

/** Latencies (ms) of `n` calls one after the other. */
async function repeat(n: number, call: () => Promise<unknown>): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await call();
    latencies.push(performance.now() - t);
  }
  return latencies;
}

/** Latencies (ms) of `n` calls, `width` of them in flight at any time. */
async function inParallel(n: number, width: number, call: () => Promise<unknown>): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next++ < n) {
      const t = performance.now();
      await call();
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return latencies;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

const round = (n: number) => Math.round(n * 1000) / 1000;

/** Forks a fixture of bench/rpc/ under tsx and waits for its `ready`. */
function startFixture(name: string, env: Record<string, string>): Promise<ChildProcess> {
  const child = fork(fileURLToPath(new URL(`./rpc/${name}`, import.meta.url)), [], {
    cwd: repoRoot, // tsx reads the path aliases from the root tsconfig
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within 30 s`));
    }, 30_000);
    child.on('message', (m: { type?: string }) => {
      if (m.type !== 'ready') return;
      clearTimeout(timer);
      resolve(child);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready`));
    });
  });
}

/** SIGTERM (a graceful close), then SIGKILL if it lingers. */


runIfMain(import.meta.url, run);
