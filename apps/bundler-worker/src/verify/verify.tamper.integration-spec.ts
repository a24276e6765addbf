import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BundleErrorCode,
  buildManifest,
  exportKeyPem,
  generatePlatformKeys,
  keyFingerprint,
  parseManifest,
  signManifest,
  type Manifest,
} from '@imagemart/bundle-format';
import {
  BundleKeys,
  BundlingFailureCode,
  BundlingJobName,
  DomainEventType,
  ErrorCode,
  PermissionPattern,
  bundleJobSchema,
  bundlingJobId,
  type SigningKeyInternalGetRequest,
  type SigningKeyView,
} from '@imagemart/contracts';
import { DomainException, RedisStreamsServer } from '@imagemart/messaging';
import { createLogger } from '@imagemart/observability';
import * as testing from '@imagemart/testing';
import { waitFor } from '@imagemart/testing';
import { bundleImage } from '../bundle/bundle.handler.js';
import { readObject } from '../storage/bundle-storage.js';
import {
  bundleJobData,
  bundleListing,
  imageBytes,
  newImageId,
  outcomeEvents,
  putSourceImage,
  startHarness,
  waitForOutcome,
  type BundlerHarness,
  type StoreDriver,
} from '../testing/bundler-harness.js';

const logger = createLogger({ service: 'tamper-test', level: 'silent' });

const SELLER = '123456789012';
/** Sellers' signing keys as the stand-in permission service holds them: `account/keyId` → revokedAt. */
const sellerKeys = new Map<string, string | null>();

@Controller()
class PermissionStandIn {
  @MessagePattern(PermissionPattern.signingKeyInternalGet)
  get(@Payload() req: SigningKeyInternalGetRequest): SigningKeyView {
    const revokedAt = sellerKeys.get(`${req.accountId}/${req.keyId}`);
    if (revokedAt === undefined) throw new DomainException(ErrorCode.InvalidKeyPairNotFound, `The signing key '${req.keyId}' does not exist.`);
    return {
      keyId: req.keyId,
      accountId: req.accountId,
      name: 'default',
      algorithm: 'Ed25519',
      keyType: 'ed25519',
      keyBits: null,
      publicKeyPem: '',
      createdAt: new Date(0).toISOString(),
      revokedAt,
    };
  }
}
@Module({ controllers: [PermissionStandIn] })
class PermissionStandInModule {}

/**
 * A bundle changed after it was written never becomes `available`: each tampering ends in
 * `bundling.bundle.failed` with the format's code, the verify job fails without a retry, and
 * nothing is published as verified.
 */
describe.each<StoreDriver>(['fs', 's3'])('verify refuses a tampered bundle (%s store)', (driver) => {
  let h: BundlerHarness;
  let original: string; // image id of the sound bundle the cases copy
  let manifest: Manifest;
  let xml: string;
  let permission: INestMicroservice;

  beforeAll(async () => {
    h = await startHarness(`tamper-${driver}`, driver, testing);
    permission = await NestFactory.createMicroservice(PermissionStandInModule, {
      strategy: new RedisStreamsServer({ connection: h.redis.url, prefix: h.redis.prefix, service: 'permission' }),
      logger: false,
    });
    await permission.listen();
    original = newImageId();
    const data = Buffer.concat([randomBytes(22 * 1024 * 1024), imageBytes(2 * 1024 * 1024, 7)]); // three parts
    const key = `uploads/${original}/image.raw`;
    const source = { key, ...(await putSourceImage(h.store, key, data)) };
    await bundleImage({ store: h.store, keys: h.keys, logger }, bundleJobSchema.parse(bundleJobData(original, source)));
    xml = (await readObject(h.store, BundleKeys.manifest(original)))!.toString('utf8');
    manifest = parseManifest(xml);
    expect(manifest.parts.length).toBeGreaterThanOrEqual(3);
    await h.startWorker();
  });
  afterAll(async () => {
    await permission?.close();
    await h?.stop();
  });

  const partKey = (imageId: string, index: number) =>
    BundleKeys.part(BundleKeys.manifest(imageId), manifest.parts[index].filename);

  /** A copy of the sound bundle under a new image id, with `change` applied to its objects. */
  async function tamperedCopy(change: (objects: Map<string, Buffer>) => void): Promise<string> {
    const imageId = newImageId();
    const objects = new Map<string, Buffer>();
    objects.set('manifest.xml', Buffer.from(xml));
    for (const part of manifest.parts) {
      objects.set(part.filename, (await readObject(h.store, BundleKeys.part(BundleKeys.manifest(original), part.filename), 64 * 1024 * 1024))!);
    }
    change(objects);
    for (const [name, body] of objects) await h.store.put(`${BundleKeys.prefix(imageId)}${name}`, body);
    return imageId;
  }

  async function verifyOutcome(imageId: string, extra: Record<string, unknown> = {}) {
    const job = await h.queue.add(
      BundlingJobName.verify,
      { imageId, manifestKey: BundleKeys.manifest(imageId), ...extra },
      { jobId: bundlingJobId(BundlingJobName.verify, imageId) },
    );
    const outcome = await waitForOutcome(testing, h.db, imageId);
    await waitFor(async () => (await job.isFailed()) || (await job.isCompleted()) || undefined, { what: 'the verify job to end' });
    return { outcome, job: (await h.queue.getJob(job.id!))! };
  }

  async function expectFailed(imageId: string, code: string, reason?: RegExp) {
    const { outcome, job } = await verifyOutcome(imageId);
    expect(outcome.type).toBe(DomainEventType.bundleFailed);
    expect(outcome.payload).toMatchObject({ imageId, code });
    if (reason) expect((outcome.payload as { reason: string }).reason).toMatch(reason);
    expect(await job.getState()).toBe('failed');
    expect(job.attemptsMade).toBe(1); // no retry for a tampered bundle
    const events = await outcomeEvents(h.db, imageId);
    expect(events.filter((e) => e.type === DomainEventType.bundleVerified)).toEqual([]);
    expect(events).toHaveLength(1);
  }

  it('verifies the untouched copy (the cases below differ from it in one way each)', async () => {
    const imageId = await tamperedCopy(() => undefined);
    const { outcome } = await verifyOutcome(imageId);
    // What was verified, for the catalog to pin: the manifest's bytes and the platform's key.
    expect(outcome).toMatchObject({
      type: DomainEventType.bundleVerified,
      payload: {
        imageDigest: manifest.image.digest,
        manifestDigest: createHash('sha256').update(xml).digest('hex'),
        signerKeyId: keyFingerprint(h.keys.signing.publicKey),
      },
    });
  });

  it('a manifest with one part digest changed: SignatureInvalid', async () => {
    const digest = manifest.parts[1].digest;
    const changed = `${digest.slice(0, -1)}${digest.endsWith('0') ? '1' : '0'}`;
    const imageId = await tamperedCopy((o) => o.set('manifest.xml', Buffer.from(xml.replace(digest, changed))));
    await expectFailed(imageId, BundleErrorCode.SignatureInvalid);
  });

  it('a missing part: PartMissing', async () => {
    const imageId = await tamperedCopy((o) => o.delete(manifest.parts[1].filename));
    await expectFailed(imageId, BundleErrorCode.PartMissing, /part 1/);
    expect(await bundleListing(h.store, imageId)).not.toContain(partKey(imageId, 1));
  });

  it('a part with one flipped bit: DigestMismatch', async () => {
    const imageId = await tamperedCopy((o) => {
      const part = o.get(manifest.parts[0].filename)!;
      part[12345] ^= 0x10;
    });
    await expectFailed(imageId, BundleErrorCode.DigestMismatch, /part 0/);
  });

  it('two parts swapped: DigestMismatch', async () => {
    const imageId = await tamperedCopy((o) => {
      const [a, b] = [manifest.parts[0].filename, manifest.parts[1].filename];
      const first = o.get(a)!;
      o.set(a, o.get(b)!);
      o.set(b, first);
    });
    await expectFailed(imageId, BundleErrorCode.DigestMismatch, /part 0/);
  });

  it('a manifest signed by another key: SignatureInvalid', async () => {
    const other = await generatePlatformKeys();
    const forged = buildManifest(signManifest(manifest, other.signing.privateKey));
    const imageId = await tamperedCopy((o) => o.set('manifest.xml', Buffer.from(forged)));
    await expectFailed(imageId, BundleErrorCode.SignatureInvalid);
  });

  it('a manifest signed by the seller key that the job names verifies, while the key is active', async () => {
    const seller = await generatePlatformKeys();
    const keyId = keyFingerprint(seller.signing.publicKey);
    sellerKeys.set(`${SELLER}/${keyId}`, null);
    const signed = buildManifest(signManifest(manifest, seller.signing.privateKey));
    const imageId = await tamperedCopy((o) => o.set('manifest.xml', Buffer.from(signed)));
    const { outcome } = await verifyOutcome(imageId, { signerPublicKeyPem: exportKeyPem(seller.signing.publicKey), signerAccountId: SELLER });
    expect(outcome).toMatchObject({
      type: DomainEventType.bundleVerified,
      payload: { signerKeyId: keyId, manifestDigest: createHash('sha256').update(signed).digest('hex') },
    });
  });

  it('a seller key revoked since the upload was opened, or not registered: SigningKeyRevoked, no retry', async () => {
    for (const revoked of [true, false]) {
      const seller = await generatePlatformKeys();
      const keyId = keyFingerprint(seller.signing.publicKey);
      if (revoked) sellerKeys.set(`${SELLER}/${keyId}`, new Date().toISOString());
      const signed = buildManifest(signManifest(manifest, seller.signing.privateKey));
      const imageId = await tamperedCopy((o) => o.set('manifest.xml', Buffer.from(signed)));
      const { outcome, job } = await verifyOutcome(imageId, { signerPublicKeyPem: exportKeyPem(seller.signing.publicKey), signerAccountId: SELLER });
      expect(outcome).toMatchObject({ type: DomainEventType.bundleFailed, payload: { imageId, code: BundlingFailureCode.SigningKeyRevoked } });
      expect((outcome.payload as { reason: string }).reason).toContain(keyId);
      expect(await job.getState()).toBe('failed');
      expect(job.attemptsMade).toBe(1);
      expect((await outcomeEvents(h.db, imageId)).map((e) => e.type)).toEqual([DomainEventType.bundleFailed]);
    }
  });

  it('an oversized manifest: ManifestTooLarge, read no further than the limit', async () => {
    const padded = xml.replace('<manifest>', `<manifest><!--${'x'.repeat(4 * 1024 * 1024)}-->`);
    const imageId = await tamperedCopy((o) => o.set('manifest.xml', Buffer.from(padded)));
    await expectFailed(imageId, BundleErrorCode.ManifestTooLarge);
  });

  it('entity expansion ("billion laughs"): ManifestMalformed', async () => {
    const lol = [
      '<?xml version="1.0"?>',
      '<!DOCTYPE manifest [',
      '  <!ENTITY lol "lol">',
      ...Array.from({ length: 9 }, (_, i) => `  <!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`),
      ']>',
    ].join('\n');
    const bomb = xml.replace(/^<\?xml[^>]*\?>/, lol).replace('<name>Debian 13 base</name>', '<name>&lol9;</name>');
    const imageId = await tamperedCopy((o) => o.set('manifest.xml', Buffer.from(bomb)));
    await expectFailed(imageId, BundleErrorCode.ManifestMalformed, /DOCTYPE/);
  });

  it('an external entity (XXE): ManifestMalformed', async () => {
    const xxe = xml
      .replace(/^<\?xml[^>]*\?>/, '<?xml version="1.0"?>\n<!DOCTYPE manifest [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>')
      .replace('<description>A test image</description>', '<description>&xxe;</description>');
    const imageId = await tamperedCopy((o) => o.set('manifest.xml', Buffer.from(xxe)));
    await expectFailed(imageId, BundleErrorCode.ManifestMalformed);
  });

  it('a manifest that is not XML at all: ManifestMalformed', async () => {
    const imageId = await tamperedCopy((o) => o.set('manifest.xml', Buffer.from('<manifest><version>1</version>')));
    await expectFailed(imageId, BundleErrorCode.ManifestMalformed);
  });
});
