import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import type { TestingModule } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@imagemart/config';
import {
  DomainEventType,
  ErrorCode,
  PermissionPattern,
  createUploadBodySchema,
  type SigningKeyInternalGetRequest,
  type SigningKeyView,
  type Caller,
  type UploadBundle,
  type UploadCompleted,
} from '@imagemart/contracts';
import { DomainException, RedisStreamsServer } from '@imagemart/messaging';
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
import { UploadsService } from './uploads.service.js';

/**
 * Uploads of bundles made on a seller's machine, against the real database: the upload takes
 * the manifest's part size and count (not the configured ones), keeps the manifest and signer,
 * and its completion hands the bundler the parts at their final keys with the manifest, while the
 * signing key is still active (the permission service's answer comes from a stand-in on the RPC
 * transport: its own tests cover revoking).
 */
const seller: Caller = { accountId: '100000000021', roles: ['seller'] };
const PART = 1024;
let db: TestDatabase;
let redis: TestRedisPrefix;
let moduleRef: TestingModule;
let uploads: UploadsService;
let n = 0;
let permission: INestMicroservice;

const ACTIVE_KEY = `sha256:${'5'.repeat(64)}`;
const REVOKED_KEY = `sha256:${'6'.repeat(64)}`;
const UNKNOWN_KEY = `sha256:${'7'.repeat(64)}`;
/** The seller's keys as the stand-in permission service holds them: key id → revokedAt. */
const keys = new Map<string, string | null>([
  [ACTIVE_KEY, null],
  [REVOKED_KEY, null],
]);

@Controller()
class PermissionStandIn {
  @MessagePattern(PermissionPattern.signingKeyInternalGet)
  get(@Payload() req: SigningKeyInternalGetRequest): SigningKeyView {
    const revokedAt = keys.get(req.keyId);
    if (req.accountId !== seller.accountId || revokedAt === undefined) {
      throw new DomainException(ErrorCode.InvalidKeyPairNotFound, `The signing key '${req.keyId}' does not exist.`);
    }
    return {
      keyId: req.keyId,
      accountId: req.accountId,
      name: 'default',
      algorithm: 'Ed25519',
      keyType: 'ed25519',
      keyBits: null,
      publicKeyPem: '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n',
      createdAt: new Date(0).toISOString(),
      revokedAt,
    };
  }
}
@Module({ controllers: [PermissionStandIn] })
class PermissionStandInModule {}

beforeAll(async () => {
  db = await createTestDatabase('catalog_bundle_uploads');
  redis = createTestRedisPrefix('catalog-bundle-uploads');
  const config = loadConfig(catalogConfigSchema, {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    ...TestIdentities.shared().env('catalog'),
    UPLOAD_PART_SIZE_BYTES: String(64 * 1024),
  });
  permission = await NestFactory.createMicroservice(PermissionStandInModule, {
    strategy: new RedisStreamsServer({ connection: redis.url, prefix: redis.prefix, service: 'permission' }),
    logger: false,
  });
  await permission.listen();
  moduleRef = await serviceTestingModule({ prisma: db.prisma, config, imports: [CatalogModule] }).compile();
  await moduleRef.init();
  uploads = moduleRef.get(UploadsService);
});

afterAll(async () => {
  await moduleRef?.close();
  await permission?.close();
  await db?.drop();
  await redis?.cleanup();
});

const bundleOf = (filenames: string[], imageSize = 5000, signerKeyId = ACTIVE_KEY): UploadBundle => ({
  manifestXml: '<manifest>…</manifest>',
  signerKeyId,
  signerPublicKeyPem: '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n',
  partSize: PART,
  partFilenames: filenames,
  imageSize,
});

const body = (bundledSize: number) =>
  createUploadBodySchema.parse({
    name: `seller-bundle-${++n}`,
    architecture: 'x86_64',
    size: bundledSize,
    sha256: 'ab'.repeat(32),
  });

describe('uploads of seller-made bundles', () => {
  it("open with the manifest's parts and hand them over, with the manifest, at their final keys", async () => {
    const files = ['img.part.0000', 'img.part.0001', 'img.part.0002'];
    const upload = await uploads.create(seller, body(2 * PART + 100), bundleOf(files));
    expect(upload).toMatchObject({
      kind: 'bundle',
      partSize: PART,
      partCount: 3,
      size: 2 * PART + 100,
      missing: [1, 2, 3],
      bundle: { signerKeyId: `sha256:${'5'.repeat(64)}`, imageSize: 5000, partFilenames: files },
    });
    for (const [p, size] of [PART, PART, 100].entries()) {
      await uploads.recordPart(seller, {
        uploadId: upload.uploadId,
        partNumber: p + 1,
        size,
        sha256: 'cd'.repeat(32),
      });
    }
    await uploads.complete(seller, upload.uploadId);
    const events = (
      await db.prisma.catalogOutboxEvent.findMany({ where: { type: DomainEventType.uploadCompleted } })
    ).filter((e) => (e.payload as { uploadId?: string }).uploadId === upload.uploadId);
    expect(events).toHaveLength(1);
    const payload = events[0].payload as unknown as UploadCompleted;
    expect(payload).toMatchObject({
      imageId: upload.imageId,
      parts: files.map((f) => `bundles/${upload.imageId}/${f}`),
      size: 5000, // the original image's, not the parts'
      sha256: 'ab'.repeat(32),
      bundle: {
        manifestXml: '<manifest>…</manifest>',
        signerKeyId: `sha256:${'5'.repeat(64)}`,
        signerPublicKeyPem: expect.stringContaining('BEGIN PUBLIC KEY'),
      },
    });
  });

  it('are not completed once the signing key was revoked (or is no longer registered): InvalidManifest.SignerRevoked, nothing changed', async () => {
    const completedEvents = () => db.prisma.catalogOutboxEvent.count({ where: { type: DomainEventType.uploadCompleted } });
    for (const keyId of [REVOKED_KEY, UNKNOWN_KEY]) {
      const upload = await uploads.create(seller, body(100), bundleOf(['k.part.0000'], 5000, keyId));
      await uploads.recordPart(seller, { uploadId: upload.uploadId, partNumber: 1, size: 100, sha256: 'cd'.repeat(32) });
      // Opened while the key was active; revoked before the upload is completed.
      if (keyId === REVOKED_KEY) keys.set(REVOKED_KEY, new Date().toISOString());
      const before = await completedEvents();

      const err = await uploads.complete(seller, upload.uploadId).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DomainException);
      expect((err as DomainException).code).toBe(ErrorCode.InvalidManifestSignerRevoked);
      expect((err as DomainException).detail).toContain(keyId);
      // Nothing changed: the upload is still open with its part, the image pending, no event.
      expect(await uploads.get(seller, upload.uploadId)).toMatchObject({ state: 'open', completedAt: null, missing: [] });
      expect((await db.prisma.catalogImage.findUniqueOrThrow({ where: { id: upload.imageId } })).state).toBe('pending');
      expect(await completedEvents()).toBe(before);
    }
  });

  it('refuses a bundle whose part count does not follow from its sizes', async () => {
    const err = await uploads
      .create(seller, body(2 * PART + 100), bundleOf(['a.part.0000', 'a.part.0001']))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(DomainException);
    expect((err as DomainException).code).toBe(ErrorCode.InvalidParameterValue);
  });

  it('leaves raw uploads as they were: kind raw, no bundle', async () => {
    const upload = await uploads.create(seller, body(100));
    expect(upload).toMatchObject({ kind: 'raw', bundle: null, partSize: 64 * 1024, partCount: 1 });
  });
});
