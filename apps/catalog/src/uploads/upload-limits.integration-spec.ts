import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestingModule } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@imagemart/config';
import { DomainEventType, ErrorCode, UploadKeys, createUploadBodySchema, type Caller, type ImageChanged } from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { createObjectStore, type ObjectStore } from '@imagemart/object-store';
import {
  createTestDatabase,
  createTestRedisPrefix,
  serviceTestingModule,
  type TestDatabase,
  type TestRedisPrefix,
  TestIdentities,
} from '@imagemart/testing';
import { CatalogModule } from '../catalog.module.js';
import { catalogConfigSchema } from '../catalog.config.js';
import { ImagesService } from '../images/images.service.js';
import { UploadExpirySweeper } from './upload-expiry.sweeper.js';
import { UploadsService } from './uploads.service.js';

/**
 * Per-seller limits on open uploads (count and declared bytes) and pending images, and the expiry
 * of open uploads and pending images that make no progress, against the real database and a
 * filesystem object store.
 */
const PART = 64 * 1024;
const BYTES_LIMIT = 4 * PART;
const EXPIRY_MS = 60 * 60 * 1000;
let db: TestDatabase;
let redis: TestRedisPrefix;
let moduleRef: TestingModule;
let uploads: UploadsService;
let images: ImagesService;
let sweeper: UploadExpirySweeper;
let storeDir: string;
let store: ObjectStore;
let n = 0;
let accounts = 0;

beforeAll(async () => {
  db = await createTestDatabase('catalog_upload_limits');
  redis = createTestRedisPrefix('catalog-upload-limits');
  storeDir = await mkdtemp(path.join(tmpdir(), 'imagemart-upload-limits-'));
  const config = loadConfig(catalogConfigSchema, {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    OBJECT_STORE_ROOT: storeDir,
    UPLOAD_PART_SIZE_BYTES: String(PART),
    SELLER_OPEN_UPLOAD_LIMIT: '2',
    SELLER_OPEN_UPLOAD_BYTES_LIMIT: String(BYTES_LIMIT),
    SELLER_PENDING_IMAGE_LIMIT: '3',
    ...TestIdentities.shared().env('catalog'),
    UPLOAD_EXPIRY_MS: String(EXPIRY_MS),
    // Swept by the test, not by the timer.
    UPLOAD_EXPIRY_SWEEP_INTERVAL_MS: '86400000',
  });
  moduleRef = await serviceTestingModule({ prisma: db.prisma, config, imports: [CatalogModule] }).compile();
  await moduleRef.init();
  uploads = moduleRef.get(UploadsService);
  images = moduleRef.get(ImagesService);
  sweeper = moduleRef.get(UploadExpirySweeper);
  store = await createObjectStore({ driver: 'fs', root: storeDir });
});

afterAll(async () => {
  await moduleRef?.close();
  await store?.close();
  await db?.drop();
  await redis?.cleanup();
  if (storeDir) await rm(storeDir, { recursive: true, force: true });
});

const newSeller = (): Caller => ({ accountId: String(300000000000 + ++accounts), roles: ['seller'] });
const body = (size: number) => createUploadBodySchema.parse({ name: `limited-${++n}`, architecture: 'x86_64', size, sha256: 'a'.repeat(64) });
const imageBody = () => ({
  name: `pending-${++n}`,
  architecture: 'x86_64' as const,
  virtualizationType: 'hvm' as const,
  rootDeviceType: 'ebs' as const,
  blockDeviceMappings: [],
  platform: 'linux' as const,
  productCodes: [],
});

async function codeOf(work: Promise<unknown>): Promise<string> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DomainException);
  return (err as DomainException).code;
}

const countsOf = async (ownerId: string) => ({
  images: await db.prisma.catalogImage.count({ where: { ownerId } }),
  uploads: await db.prisma.catalogUpload.count({ where: { ownerId } }),
  events: await db.prisma.catalogOutboxEvent.count(),
});

describe('seller limits', () => {
  it('refuse an upload past the open uploads or their bytes with UploadLimitExceeded, registering nothing', async () => {
    const seller = newSeller();
    const big = await uploads.create(seller, body(3 * PART));
    let before = await countsOf(seller.accountId);
    // 3 parts open, 2 more would pass the 4 parts' worth of bytes.
    expect(await codeOf(uploads.create(seller, body(2 * PART)))).toBe(ErrorCode.UploadLimitExceeded);
    expect(await countsOf(seller.accountId)).toEqual(before);

    await uploads.create(seller, body(PART));
    before = await countsOf(seller.accountId);
    // Two open uploads: the most.
    expect(await codeOf(uploads.create(seller, body(1)))).toBe(ErrorCode.UploadLimitExceeded);
    expect(await countsOf(seller.accountId)).toEqual(before);
    // Another seller has limits of his own.
    await uploads.create(newSeller(), body(PART));

    // An aborted upload no longer counts.
    await uploads.abort(seller, big.uploadId);
    expect((await uploads.create(seller, body(2 * PART))).state).toBe('open');
  });

  it('refuse a pending image past the limit with ResourceLimitExceeded, by upload or by registering, creating nothing', async () => {
    const seller = newSeller();
    await uploads.create(seller, body(1));
    const second = await images.register(seller, imageBody());
    await images.register(seller, imageBody());
    const before = await countsOf(seller.accountId);
    expect(await codeOf(images.register(seller, imageBody()))).toBe(ErrorCode.ResourceLimitExceeded);
    expect(await codeOf(uploads.create(seller, body(1)))).toBe(ErrorCode.ResourceLimitExceeded);
    expect(await countsOf(seller.accountId)).toEqual(before);

    // Registrations at once cannot pass the limit together.
    await images.deregister(seller, second.imageId);
    const raced = await Promise.allSettled([images.register(seller, imageBody()), images.register(seller, imageBody())]);
    expect(raced.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(await db.prisma.catalogImage.count({ where: { ownerId: seller.accountId, state: 'pending' } })).toBe(3);
  });
});

describe('expiry', () => {
  const HOURS_AGO = (h: number) => new Date(Date.now() - h * 3_600_000);
  const age = async (table: 'upload' | 'upload_part' | 'image', column: string, id: string, at: Date) =>
    db.prisma.$executeRawUnsafe(`UPDATE "catalog"."${table}" SET updated_at = $1 WHERE ${column} = $2`, at, id);
  const putPart = (uploadId: string, p: number) => store.put(UploadKeys.part(uploadId, p), Buffer.alloc(PART, p));

  it('aborts open uploads without progress and deletes their parts, fails pending images with no bundle; leaves the rest; once across replicas', async () => {
    const seller = newSeller();
    const stale = await uploads.create(seller, body(2 * PART));
    await putPart(stale.uploadId, 1);
    await uploads.recordPart(seller, { uploadId: stale.uploadId, partNumber: 1, size: PART, sha256: 'b'.repeat(64) });
    const fresh = await uploads.create(seller, body(PART));
    await putPart(fresh.uploadId, 1);
    await uploads.recordPart(seller, { uploadId: fresh.uploadId, partNumber: 1, size: PART, sha256: 'c'.repeat(64) });
    // Opened long ago, but a part was stored within the hour: progress.
    await age('upload', 'id', fresh.uploadId, HOURS_AGO(30));

    const other = newSeller();
    const abandoned = await images.register(other, imageBody());
    const recent = await images.register(other, imageBody());
    const bundling = await uploads.create(other, body(1));
    await uploads.recordPart(other, { uploadId: bundling.uploadId, partNumber: 1, size: 1, sha256: 'd'.repeat(64) });
    await uploads.complete(other, bundling.uploadId);

    await age('upload', 'id', stale.uploadId, HOURS_AGO(2));
    await age('upload_part', 'upload_id', stale.uploadId, HOURS_AGO(2));
    for (const id of [stale.imageId, abandoned.imageId, bundling.imageId]) await age('image', 'id', id, HOURS_AGO(2));
    await age('upload', 'id', bundling.uploadId, HOURS_AGO(2));

    // Three replicas sweeping at once: each upload and image is ended once.
    const swept = await Promise.all([sweeper.sweep(), sweeper.sweep(), sweeper.sweep()]);
    expect(swept.reduce((sum, s) => ({ uploads: sum.uploads + s.uploads, images: sum.images + s.images }), { uploads: 0, images: 0 })).toEqual({
      uploads: 1,
      images: 1,
    });

    expect(await uploads.get(seller, stale.uploadId)).toMatchObject({ state: 'aborted', parts: [], abortedAt: expect.any(String) });
    expect(await db.prisma.catalogUploadPart.count({ where: { uploadId: stale.uploadId } })).toBe(0);
    expect((await store.list(UploadKeys.prefix(stale.uploadId))).keys).toEqual([]);
    expect(await images.get(seller, stale.imageId)).toMatchObject({ state: 'failed', stateReason: { code: 'Upload.Expired' } });

    expect(await uploads.get(seller, fresh.uploadId)).toMatchObject({ state: 'open', missing: [] });
    expect((await store.list(UploadKeys.prefix(fresh.uploadId))).keys).toHaveLength(1);
    expect(await images.get(seller, fresh.imageId)).toMatchObject({ state: 'pending' });

    expect(await images.get(other, abandoned.imageId)).toMatchObject({ state: 'failed', stateReason: { code: 'Image.Expired' } });
    expect((await images.get(other, recent.imageId)).state).toBe('pending');
    // Its upload is complete: the bundler reports on it.
    expect((await images.get(other, bundling.imageId)).state).toBe('pending');

    // Each failure was published as the image's change.
    const changed = (await db.prisma.catalogOutboxEvent.findMany({ where: { type: DomainEventType.imageChanged } })).map(
      (e) => e.payload as unknown as ImageChanged,
    );
    // (one outbox row per queue the event goes to)
    const failed = new Set(changed.filter((e) => e.state === 'failed').map((e) => `${e.imageId}@${e.revision}`));
    expect([...failed].sort()).toEqual([`${stale.imageId}@2`, `${abandoned.imageId}@2`].sort());

    // Nothing left to end.
    expect(await sweeper.sweep()).toEqual({ uploads: 0, images: 0 });
  });
});
