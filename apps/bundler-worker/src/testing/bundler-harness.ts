import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Queue, type Job } from 'bullmq';
import {
  BundleKeys,
  BundlingJobName,
  DomainEventType,
  QueueName,
  bundlingJobId,
  type BundleFailed,
  type BundleJobData,
  type BundleVerified,
} from '@imagemart/contracts';
import { createObjectStore, S3ObjectStore, type ObjectStore } from '@imagemart/object-store';
import type { PrismaClient } from '@imagemart/database';
import { startBundlerWorker, type RunningBundlerWorker } from '../bundler-worker.js';
import { ensureDevPlatformKeys, loadPlatformKeys, type LoadedPlatformKeys } from '../keys/platform-keys.js';

export type StoreDriver = 'fs' | 's3';

/** What the harness takes from the testing library: the specs pass `@imagemart/testing` in. */
export interface TestDatabase {
  url: string;
  prisma: PrismaClient;
  drop(): Promise<void>;
}
export interface TestRedisPrefix {
  prefix: string;
  url: string;
  cleanup(): Promise<void>;
}
interface TestS3Server {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}
export interface TestSupport {
  createTestDatabase: (name: string) => Promise<TestDatabase>;
  createTestRedisPrefix: (name: string) => TestRedisPrefix;
  startTestS3Server: () => Promise<TestS3Server>;
  /** The signing identities of the processes under test (the worker signs its events). */
  TestIdentities: { shared(): { env(process: 'bundler-worker'): Record<string, string> } };
  waitFor: <T>(
    check: () => Promise<T | undefined | false>,
    options?: { timeoutMs?: number; intervalMs?: number; what?: string },
  ) => Promise<T>;
}

/** Everything a bundling test needs: its own database, Redis prefix, store, keys and worker. */
export interface BundlerHarness {
  db: TestDatabase;
  redis: TestRedisPrefix;
  /** The test's view of the worker's object store (same root or bucket). */
  store: ObjectStore;
  keys: LoadedPlatformKeys;
  queue: Queue;
  /** Environment of the worker: a spawned worker process gets the same. */
  env: Record<string, string>;
  worker?: RunningBundlerWorker;
  startWorker(extraEnv?: Record<string, string>): Promise<RunningBundlerWorker>;
  stop(): Promise<void>;
}

export interface OutcomeEvent {
  type: string;
  payload: BundleVerified | BundleFailed;
}

export const newImageId = () => `ami-${randomBytes(9).toString('hex').slice(0, 17)}`;

export async function startHarness(name: string, driver: StoreDriver, support: TestSupport): Promise<BundlerHarness> {
  const { createTestDatabase, createTestRedisPrefix, startTestS3Server } = support;
  const dir = await mkdtemp(path.join(tmpdir(), `imagemart-${name}-`));
  const db = await createTestDatabase(name);
  const redis = createTestRedisPrefix(name);
  let s3: TestS3Server | undefined;
  const keyDir = path.join(dir, 'keys');
  await ensureDevPlatformKeys(keyDir);
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    PLATFORM_KEY_DIR: keyDir,
    BUNDLER_LOCK_DURATION_MS: '2000',
    BUNDLER_STALLED_INTERVAL_MS: '1000',
    ...support.TestIdentities.shared().env('bundler-worker'),
  };
  let store: ObjectStore;
  if (driver === 's3') {
    s3 = await startTestS3Server();
    Object.assign(env, {
      OBJECT_STORE_DRIVER: 's3',
      S3_ENDPOINT: s3.endpoint,
      S3_REGION: s3.region,
      S3_BUCKET: s3.bucket,
      S3_ACCESS_KEY_ID: s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
    });
    store = new S3ObjectStore({ ...s3, forcePathStyle: true });
  } else {
    env.OBJECT_STORE_DRIVER = 'fs';
    env.OBJECT_STORE_ROOT = path.join(dir, 'objects');
    store = await createObjectStore({ driver: 'fs', root: env.OBJECT_STORE_ROOT });
  }
  const keys = await loadPlatformKeys(
    { PLATFORM_KEY_DIR: keyDir },
    { generateMissing: false },
  );
  const queue = new Queue(QueueName.bundling, {
    connection: { url: redis.url },
    prefix: redis.prefix,
    // The production defaults, faster: five attempts with a short backoff.
    defaultJobOptions: { attempts: 5, backoff: { type: 'fixed', delay: 200 } },
  });

  const harness: BundlerHarness = {
    db,
    redis,
    store,
    keys,
    queue,
    env,
    async startWorker(extraEnv = {}) {
      harness.worker = await startBundlerWorker({ ...env, ...extraEnv });
      return harness.worker;
    },
    async stop() {
      await harness.worker?.stop();
      await queue.close();
      await store.close();
      await s3?.stop();
      await db.drop();
      await redis.cleanup();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

/**
 * Bytes of a test image, deterministic for a seed: runs of random bytes between runs of text, so
 * that it compresses a little, as a real image does.
 */
export function imageBytes(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let at = 0;
  let n = seed;
  const random = createHash('sha256').update(`seed-${seed}`).digest();
  while (at < size) {
    const run = Math.min(size - at, 64 * 1024 + ((n * 7919) % (192 * 1024)));
    if (n % 2 === 0) {
      for (let i = 0; i < run; i += 32) createHash('sha256').update(random).update(String(at + i)).digest().copy(out, at + i);
    } else {
      out.write(`line ${n}: the quick brown fox jumps over the lazy dog\n`.repeat(Math.ceil(run / 50)).slice(0, run), at, 'latin1');
    }
    at += run;
    n++;
  }
  return out;
}

/** Stores a raw image as an upload would leave it; returns its size and SHA-256. */
export async function putSourceImage(
  store: ObjectStore,
  key: string,
  data: Buffer,
): Promise<{ size: number; sha256: string }> {
  await store.put(key, Readable.from([data]), { contentLength: data.length });
  return { size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}

export function bundleJobData(
  imageId: string,
  source: { key: string; size: number; sha256: string },
  overrides: Partial<BundleJobData> = {},
): BundleJobData {
  return {
    imageId,
    ownerId: '123456789012',
    source: { key: source.key },
    declaredSize: source.size,
    declaredSha256: source.sha256,
    compression: 'zstd',
    image: {
      name: 'Debian 13 base',
      version: '2026.11.1',
      description: 'A test image',
      architecture: 'x86_64',
      virtualizationType: 'hvm',
      kernelId: 'aki-12345678',
      blockDeviceMapping: [{ virtual: 'root', device: '/dev/xvda' }],
      productCodes: [],
    },
    requestId: `req-${imageId}`,
    ...overrides,
  };
}

export function addBundleJob(queue: Queue, data: BundleJobData): Promise<Job> {
  return queue.add(BundlingJobName.bundle, data, { jobId: bundlingJobId(BundlingJobName.bundle, data.imageId) });
}

/** The bundling outcome events the outbox holds for an image, oldest first. */
export async function outcomeEvents(db: TestDatabase, imageId: string): Promise<OutcomeEvent[]> {
  const rows = await db.prisma.bundlingOutboxEvent.findMany({ orderBy: { createdAt: 'asc' } });
  return rows
    .filter((r) => (r.payload as { imageId?: string } | null)?.imageId === imageId)
    .map((r) => ({ type: r.type, payload: r.payload as unknown as BundleVerified | BundleFailed }));
}

/** Waits for the image's first outcome event. */
export function waitForOutcome(
  support: Pick<TestSupport, 'waitFor'>,
  db: TestDatabase,
  imageId: string,
  timeoutMs = 20_000,
): Promise<OutcomeEvent> {
  return support.waitFor(async () => (await outcomeEvents(db, imageId))[0], { timeoutMs, intervalMs: 100, what: `the outcome of ${imageId}` });
}

export const isVerified = (e: OutcomeEvent) => e.type === DomainEventType.bundleVerified;

/** Every key under the image's bundle prefix. */
export async function bundleListing(store: ObjectStore, imageId: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(BundleKeys.prefix(imageId), cursor ? { cursor } : {});
    keys.push(...page.keys.map((k) => k.key));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return keys;
}
