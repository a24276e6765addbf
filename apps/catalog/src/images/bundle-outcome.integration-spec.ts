import type { TestingModule } from '@nestjs/testing';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@imagemart/config';
import { DomainEventType, EventQueue, type Caller, type DomainEventJob } from '@imagemart/contracts';
import { DOMAIN_EVENT_HANDLERS, startDomainEventConsumer, type DomainEventHandlers } from '@imagemart/messaging';
import { createLogger } from '@imagemart/observability';
import {
  createTestDatabase,
  createTestRedisPrefix,
  serviceTestingModule,
  waitFor,
  type TestDatabase,
  type TestRedisPrefix,
  TestIdentities,
} from '@imagemart/testing';
import type { Worker } from 'bullmq';
import { CatalogModule } from '../catalog.module.js';
import { catalogConfigSchema } from '../catalog.config.js';
import { ImagesService } from './images.service.js';

/**
 * The bundler's verdict reaches the catalog as an event on its queue: verified makes the image
 * available with its manifest location and size, and records the manifest's digest and signer; failed marks it failed with the reason; a
 * deregistered image stays deregistered whatever arrives.
 */
let db: TestDatabase;
let redis: TestRedisPrefix;
let moduleRef: TestingModule;
let images: ImagesService;
let worker: Worker<DomainEventJob>;
let queue: Queue<DomainEventJob>;
const seller: Caller = { accountId: '100000000001', roles: ['seller'] };
let n = 0;

beforeAll(async () => {
  db = await createTestDatabase('catalog_bundle_outcome');
  redis = createTestRedisPrefix('catalog-bundle-outcome');
  const config = loadConfig(catalogConfigSchema, {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    ...TestIdentities.shared().env('catalog'),
    ...TestIdentities.shared().env('catalog'),
  });
  moduleRef = await serviceTestingModule({ prisma: db.prisma, config, imports: [CatalogModule] }).compile();
  await moduleRef.init();
  images = moduleRef.get(ImagesService);
  worker = startDomainEventConsumer({
    queue: EventQueue.catalog,
    handlers: moduleRef.get<DomainEventHandlers>(DOMAIN_EVENT_HANDLERS),
    url: redis.url,
    prefix: redis.prefix,
    logger: createLogger({ service: 'catalog-test', level: 'silent' }),
  });
  queue = new Queue<DomainEventJob>(EventQueue.catalog, { connection: { url: redis.url }, prefix: redis.prefix });
});

afterAll(async () => {
  await worker?.close();
  await queue?.close();
  await moduleRef?.close();
  await db?.drop();
  await redis?.cleanup();
});

async function deliver(type: string, payload: unknown): Promise<void> {
  const id = `event-${++n}`;
  await queue.add(type, { id, type, payload, occurredAt: new Date().toISOString() }, { jobId: id });
  await waitFor(async () => ['completed', 'failed'].includes(await queue.getJobState(id)), { what: `${type} handled` });
  expect(await queue.getJobState(id)).toBe('completed');
}

const register = (name: string) =>
  images.register(seller, {
    name,
    architecture: 'x86_64',
    virtualizationType: 'hvm',
    rootDeviceType: 'ebs',
    blockDeviceMappings: [],
    platform: 'linux',
    productCodes: [],
  });

const verified = (imageId: string) => ({
  imageId,
  manifestLocation: `bundles/${imageId}/image.manifest.xml`,
  imageSize: 1_048_576,
  bundledSize: 700_000,
  imageDigest: 'a'.repeat(64),
  manifestDigest: 'b'.repeat(64),
  signerKeyId: `sha256:${'c'.repeat(64)}`,
});

describe('bundling outcome events', () => {
  it('make a verified image available, with its manifest location and size; twice changes nothing', async () => {
    const image = await register('verified-image');
    expect(image.state).toBe('pending');
    await deliver(DomainEventType.bundleVerified, verified(image.imageId));
    const after = await images.get(seller, image.imageId);
    expect(after).toMatchObject({ state: 'available', manifestLocation: verified(image.imageId).manifestLocation, imageSize: 1_048_576 });
    // What was verified is pinned on the image: every launch's host checks the manifest against it.
    const row = await db.prisma.catalogImage.findUniqueOrThrow({ where: { id: image.imageId } });
    expect(row).toMatchObject({ manifestDigest: 'b'.repeat(64), signerKeyId: `sha256:${'c'.repeat(64)}` });
    const revision = row.revision;
    await deliver(DomainEventType.bundleVerified, verified(image.imageId));
    expect((await db.prisma.catalogImage.findUniqueOrThrow({ where: { id: image.imageId } })).revision).toBe(revision);
  });

  it('mark a failed image failed with the reason the seller reads', async () => {
    const image = await register('failed-image');
    await deliver(DomainEventType.bundleFailed, { imageId: image.imageId, code: 'PartDigestMismatch', reason: 'Part 3 does not match its digest' });
    expect(await images.get(seller, image.imageId)).toMatchObject({
      state: 'failed',
      stateReason: { code: 'PartDigestMismatch', message: 'Part 3 does not match its digest' },
    });
  });

  it('leave a deregistered image deregistered', async () => {
    const image = await register('gone-image');
    await images.deregister(seller, image.imageId);
    await deliver(DomainEventType.bundleVerified, verified(image.imageId));
    await deliver(DomainEventType.bundleFailed, { imageId: image.imageId, code: 'X', reason: 'late failure' });
    expect((await images.get(seller, image.imageId)).state).toBe('deregistered');
  });
});
