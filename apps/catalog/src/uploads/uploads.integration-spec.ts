import type { TestingModule } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@imagemart/config';
import {
  DomainEventType,
  EventQueue,
  ErrorCode,
  createUploadBodySchema,
  type Caller,
  type ErrorBody,
  type UploadCompleted,
  type UploadView,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
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
import { UploadsService } from './uploads.service.js';

/**
 * The catalog's upload sessions against the real database: an upload registers its image and
 * opens with the configured part size; parts are recorded only at their exact size; completing
 * needs every part and writes `catalog.upload.completed` once; aborting deregisters the image;
 * only the uploading account sees its upload.
 */
const PART = 64 * 1024;
const seller: Caller = { accountId: '100000000011', roles: ['seller'] };
const otherSeller: Caller = { accountId: '100000000012', roles: ['seller'] };
const buyer: Caller = { accountId: '100000000013', roles: ['buyer'] };
const sha = (c: string) => c.repeat(64);

let db: TestDatabase;
let redis: TestRedisPrefix;
let moduleRef: TestingModule;
let uploads: UploadsService;
let images: ImagesService;
let n = 0;

beforeAll(async () => {
  db = await createTestDatabase('catalog_uploads');
  redis = createTestRedisPrefix('catalog-uploads');
  const config = loadConfig(catalogConfigSchema, {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    ...TestIdentities.shared().env('catalog'),
    UPLOAD_PART_SIZE_BYTES: String(PART),
    // The seller limits have their own spec (upload-limits.integration-spec.ts).
    SELLER_OPEN_UPLOAD_LIMIT: '1000',
    SELLER_PENDING_IMAGE_LIMIT: '1000',
  });
  moduleRef = await serviceTestingModule({ prisma: db.prisma, config, imports: [CatalogModule] }).compile();
  await moduleRef.init();
  uploads = moduleRef.get(UploadsService);
  images = moduleRef.get(ImagesService);
});

afterAll(async () => {
  await moduleRef?.close();
  await db?.drop();
  await redis?.cleanup();
});

const body = (size: number, overrides: Record<string, unknown> = {}) =>
  createUploadBodySchema.parse({
    name: `upload-${++n}`,
    description: 'line one\nline two',
    version: '1.0',
    architecture: 'arm64',
    rootDeviceName: '/dev/xvda',
    blockDeviceMappings: [
      { deviceName: '/dev/xvda', ebs: { volumeSize: 8 } },
      { deviceName: '/dev/xvdb', virtualName: 'ephemeral0' },
    ],
    size,
    sha256: sha('A'),
    ...overrides,
  });

async function rejection(work: Promise<unknown>): Promise<ErrorBody> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DomainException);
  return (err as DomainException).body;
}

const completedEvents = async (uploadId: string) =>
  (await db.prisma.catalogOutboxEvent.findMany({ where: { type: DomainEventType.uploadCompleted }, orderBy: { createdAt: 'asc' } })).filter(
    (e) => (e.payload as { uploadId?: string }).uploadId === uploadId,
  );

/** Records every part at its right size. */
async function recordAll(upload: UploadView, caller = seller): Promise<void> {
  for (let p = 1; p <= upload.partCount; p++) {
    const size = p < upload.partCount ? upload.partSize : upload.size - upload.partSize * (upload.partCount - 1);
    await uploads.recordPart(caller, { uploadId: upload.uploadId, partNumber: p, size, sha256: sha(String(p % 10)) });
  }
}

describe('creating an upload', () => {
  it('registers a pending image and opens the upload with the configured part size', async () => {
    const upload = await uploads.create(seller, body(2 * PART + 10));
    expect(upload).toMatchObject({
      state: 'open',
      size: 2 * PART + 10,
      sha256: sha('a'),
      compression: 'zstd',
      partSize: PART,
      partCount: 3,
      parts: [],
      missing: [1, 2, 3],
      completedAt: null,
    });
    expect(upload.uploadId).toMatch(/^upl-[0-9a-f]{17}$/);
    expect(await images.get(seller, upload.imageId)).toMatchObject({ state: 'pending', ownerId: seller.accountId, architecture: 'arm64' });
  });

  it('is idempotent within one request: a second run finds the first one’s image and upload', async () => {
    const request = body(100);
    const run = () => requestContext.run({ requestId: `req-create-${n}` }, () => uploads.create(seller, request));
    const first = await run();
    const second = await run();
    expect(second.uploadId).toBe(first.uploadId);
    expect(second.imageId).toBe(first.imageId);
    expect(await db.prisma.catalogUpload.count({ where: { imageId: first.imageId } })).toBe(1);
  });

  it('takes an image of one part, and refuses buyers, taken names and images too large for the parts', async () => {
    expect(await uploads.create(seller, body(PART))).toMatchObject({ partCount: 1, missing: [1] });
    expect((await rejection(uploads.create(buyer, body(10)))).code).toBe(ErrorCode.UnauthorizedOperation);
    const named = body(10);
    await uploads.create(seller, named);
    expect((await rejection(uploads.create(seller, named))).code).toBe(ErrorCode.InvalidAMINameDuplicate);
    const tooLarge = await rejection(uploads.create(seller, body(10_000 * PART + 1)));
    expect(tooLarge.code).toBe(ErrorCode.InvalidParameterValue);
    expect(tooLarge.errors).toEqual([{ path: 'size', message: `must be at most ${10_000 * PART}` }]);
  });
});

describe('recording parts', () => {
  it('records a part at its exact size and replaces it when recorded again', async () => {
    const upload = await uploads.create(seller, body(PART + 100));
    await uploads.recordPart(seller, { uploadId: upload.uploadId, partNumber: 2, size: 100, sha256: sha('b') });
    expect(await uploads.recordPart(seller, { uploadId: upload.uploadId, partNumber: 2, size: 100, sha256: sha('c') })).toEqual({
      partNumber: 2,
      size: 100,
      sha256: sha('c'),
    });
    expect(await uploads.get(seller, upload.uploadId)).toMatchObject({ parts: [{ partNumber: 2, size: 100, sha256: sha('c') }], missing: [1] });
  });

  it('refuses a wrong size, a part number past the last, and another account', async () => {
    const upload = await uploads.create(seller, body(PART + 100));
    const wrong = await rejection(uploads.recordPart(seller, { uploadId: upload.uploadId, partNumber: 1, size: PART - 1, sha256: sha('b') }));
    expect(wrong).toMatchObject({ code: ErrorCode.InvalidParameterValue, errors: [{ path: 'size', message: `must be ${PART}` }] });
    const longLast = await rejection(uploads.recordPart(seller, { uploadId: upload.uploadId, partNumber: 2, size: 101, sha256: sha('b') }));
    expect(longLast.code).toBe(ErrorCode.InvalidParameterValue);
    const past = await rejection(uploads.recordPart(seller, { uploadId: upload.uploadId, partNumber: 3, size: 0, sha256: sha('b') }));
    expect(past).toMatchObject({ code: ErrorCode.InvalidParameterValue, errors: [{ path: 'partNumber', message: 'must be 1 to 2' }] });
    const foreign = await rejection(uploads.recordPart(otherSeller, { uploadId: upload.uploadId, partNumber: 1, size: PART, sha256: sha('b') }));
    expect(foreign.code).toBe(ErrorCode.InvalidUploadIDNotFound);
    expect((await rejection(uploads.get(otherSeller, upload.uploadId))).code).toBe(ErrorCode.InvalidUploadIDNotFound);
    expect((await uploads.get(seller, upload.uploadId)).parts).toEqual([]);
  });
});

describe('completing an upload', () => {
  it('needs every part, naming the missing ones', async () => {
    const upload = await uploads.create(seller, body(3 * PART));
    await uploads.recordPart(seller, { uploadId: upload.uploadId, partNumber: 2, size: PART, sha256: sha('b') });
    const missing = await rejection(uploads.complete(seller, upload.uploadId));
    expect(missing.code).toBe(ErrorCode.InvalidParameterValue);
    expect(missing.detail).toContain('2 of 3 parts are missing (1, 3)');
    expect(missing.errors).toEqual([
      { path: 'parts', message: 'part 1 is missing' },
      { path: 'parts', message: 'part 3 is missing' },
    ]);
    expect(await completedEvents(upload.uploadId)).toEqual([]);
    expect((await uploads.get(seller, upload.uploadId)).state).toBe('open');
  });

  it('completes once, writing catalog.upload.completed for the bundler with the parts in order', async () => {
    const upload = await requestContext.run({ requestId: 'req-complete' }, () => uploads.create(seller, body(2 * PART + 1, { compression: 'gzip' })));
    await recordAll(upload);
    const done = await requestContext.run({ requestId: 'req-complete' }, () => uploads.complete(seller, upload.uploadId));
    expect(done).toMatchObject({ state: 'complete', missing: [], completedAt: expect.any(String) });
    expect(done.parts.map((p) => p.partNumber)).toEqual([1, 2, 3]);
    expect(await uploads.complete(seller, upload.uploadId)).toEqual(done);

    const events = await completedEvents(upload.uploadId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ queue: EventQueue.bundling, requestId: 'req-complete' });
    const payload = events[0].payload as unknown as UploadCompleted;
    expect(payload).toEqual({
      uploadId: upload.uploadId,
      imageId: upload.imageId,
      ownerId: seller.accountId,
      parts: [1, 2, 3].map((p) => `uploads/${upload.uploadId}/part-${p}`),
      size: 2 * PART + 1,
      sha256: sha('a'),
      compression: 'gzip',
      image: {
        name: expect.stringMatching(/^upload-\d+$/),
        version: '1.0',
        // Manifest text has no control characters.
        description: 'line one line two',
        architecture: 'arm64',
        virtualizationType: 'hvm',
        blockDeviceMapping: [
          { virtual: 'root', device: '/dev/xvda' },
          { virtual: 'ephemeral0', device: '/dev/xvdb' },
        ],
        productCodes: [],
      },
    });
    // A complete upload takes no more parts and cannot be aborted.
    expect((await rejection(uploads.recordPart(seller, { uploadId: upload.uploadId, partNumber: 1, size: PART, sha256: sha('d') }))).code).toBe(
      ErrorCode.IncorrectState,
    );
    expect((await rejection(uploads.abort(seller, upload.uploadId))).code).toBe(ErrorCode.IncorrectState);
    expect((await rejection(uploads.complete(otherSeller, upload.uploadId))).code).toBe(ErrorCode.InvalidUploadIDNotFound);
  });

  it('refuses an upload whose image was deregistered meanwhile', async () => {
    const upload = await uploads.create(seller, body(10));
    await recordAll(upload);
    await images.deregister(seller, upload.imageId);
    expect((await rejection(uploads.complete(seller, upload.uploadId))).code).toBe(ErrorCode.IncorrectState);
    expect(await completedEvents(upload.uploadId)).toEqual([]);
  });
});

describe('aborting an upload', () => {
  it('drops its parts and deregisters its image, which frees the name; twice answers the same', async () => {
    const request = body(PART + 1);
    const upload = await uploads.create(seller, request);
    await uploads.recordPart(seller, { uploadId: upload.uploadId, partNumber: 1, size: PART, sha256: sha('b') });
    expect((await rejection(uploads.abort(otherSeller, upload.uploadId))).code).toBe(ErrorCode.InvalidUploadIDNotFound);

    const aborted = await uploads.abort(seller, upload.uploadId);
    expect(aborted).toMatchObject({ state: 'aborted', parts: [], missing: [], abortedAt: expect.any(String) });
    expect(await uploads.abort(seller, upload.uploadId)).toEqual(aborted);
    expect(await db.prisma.catalogUploadPart.count({ where: { uploadId: upload.uploadId } })).toBe(0);
    expect((await images.get(seller, upload.imageId)).state).toBe('deregistered');
    expect((await rejection(uploads.complete(seller, upload.uploadId))).code).toBe(ErrorCode.IncorrectState);
    expect((await rejection(uploads.recordPart(seller, { uploadId: upload.uploadId, partNumber: 1, size: PART, sha256: sha('b') }))).code).toBe(
      ErrorCode.IncorrectState,
    );
    // The name is free for a new upload.
    expect((await uploads.create(seller, request)).state).toBe('open');
  });
});
