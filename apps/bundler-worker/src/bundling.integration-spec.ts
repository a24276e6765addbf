import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyFingerprint, parseManifest } from '@imagemart/bundle-format';
import {
  BundleKeys,
  BundlingFailureCode,
  BundlingJobName,
  DomainEventType,
  EventQueue,
  bundlingJobId,
  type BundlingProgress,
} from '@imagemart/contracts';
import * as testing from '@imagemart/testing';
import { TestIdentities, waitFor } from '@imagemart/testing';
import { readObject } from './storage/bundle-storage.js';
import {
  addBundleJob,
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
} from './testing/bundler-harness.js';

/**
 * The bundling worker end to end, on each object store driver: a real worker process's code on
 * real BullMQ (Redis) and PostgreSQL (the outbox), with the filesystem store and with the S3
 * driver against an S3-protocol server on loopback.
 */
describe.each<StoreDriver>(['fs', 's3'])('bundler-worker with the %s store', (driver) => {
  let h: BundlerHarness;

  beforeAll(async () => {
    h = await startHarness(`bundling-${driver}`, driver, testing);
    await h.startWorker();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('bundles an uploaded image into parts and a manifest, verifies it and publishes bundle.verified', async () => {
    const imageId = newImageId();
    const data = imageBytes(23 * 1024 * 1024 + 12345); // three 10 MiB parts or fewer after zstd
    const source = { key: `uploads/${imageId}/image.raw`, ...(await putSourceImage(h.store, `uploads/${imageId}/image.raw`, data)) };
    const progress: BundlingProgress[] = [];
    const job = await addBundleJob(h.queue, bundleJobData(imageId, source));
    const onProgress = ({ jobId, data: p }: { jobId: string; data: unknown }) =>
      jobId === job.id && progress.push(p as BundlingProgress);
    const { QueueEvents } = await import('bullmq');
    const events = new QueueEvents(h.queue.name, { connection: { url: h.redis.url }, prefix: h.redis.prefix });
    await events.waitUntilReady();
    events.on('progress', onProgress);

    const outcome = await waitForOutcome(testing, h.db, imageId, 30_000);
    await events.close();
    expect(outcome.type).toBe(DomainEventType.bundleVerified);
    const manifestKey = BundleKeys.manifest(imageId);
    const manifestXml = (await readObject(h.store, manifestKey))!;
    expect(outcome.payload).toEqual({
      imageId,
      manifestLocation: manifestKey,
      imageSize: source.size,
      bundledSize: expect.any(Number) as number,
      imageDigest: source.sha256,
      // What was verified: these manifest bytes, signed with the platform's key.
      manifestDigest: createHash('sha256').update(manifestXml).digest('hex'),
      signerKeyId: keyFingerprint(h.keys.signing.publicKey),
    });

    // Exactly the manifest and the parts it names, under the image's prefix.
    const manifest = parseManifest(manifestXml);
    expect(manifest.image.user).toBe('123456789012');
    expect(manifest.machineConfiguration.kernelId).toBe('aki-12345678');
    expect(manifest.parts.length).toBeGreaterThanOrEqual(2);
    expect((await bundleListing(h.store, imageId)).sort()).toEqual(
      [manifestKey, ...manifest.parts.map((p) => BundleKeys.part(manifestKey, p.filename))].sort(),
    );
    expect(manifest.parts.reduce((n, p) => n + p.size, 0)).toBe((outcome.payload as { bundledSize: number }).bundledSize);

    // The bundle job reported progress per part and queued the verify job under its fixed id.
    const bundled = await h.queue.getJob(bundlingJobId(BundlingJobName.bundle, imageId));
    expect(await bundled?.getState()).toBe('completed');
    expect(bundled?.progress).toMatchObject({ phase: 'done', percent: 100, bytesTotal: source.size });
    const bundling = progress.filter((p) => p.phase === 'bundling');
    expect(bundling.length).toBeGreaterThanOrEqual(manifest.parts.length);
    expect(bundling.map((p) => p.bytesDone)).toEqual([...bundling.map((p) => p.bytesDone)].sort((a, b) => a - b));
    const verify = await h.queue.getJob(bundlingJobId(BundlingJobName.verify, imageId));
    await waitFor(async () => (await verify?.getState()) === 'completed', { what: 'the verify job to complete' });
    expect((await h.queue.getJob(verify!.id!))?.progress).toMatchObject({ phase: 'verifying', percent: 100 });
    expect(await outcomeEvents(h.db, imageId)).toHaveLength(1);

    // The relay delivers the event to the catalog's queue.
    await waitFor(
      async () => (await h.db.prisma.bundlingOutboxEvent.findMany({ where: { publishedAt: { not: null } } })).length > 0,
      { what: 'the relay to publish the event' },
    );

    // Delete: the whole bundle goes; a second delete succeeds with nothing to do.
    const deleting = await h.queue.add(BundlingJobName.delete, { imageId }, { jobId: bundlingJobId(BundlingJobName.delete, imageId) });
    await waitFor(async () => (await deleting.isCompleted()) || undefined, { what: 'the delete job' });
    expect((await h.queue.getJob(bundlingJobId(BundlingJobName.delete, imageId)))?.returnvalue).toEqual({
      deleted: manifest.parts.length, // the manifest goes first, then the parts by prefix
    });
    expect(await bundleListing(h.store, imageId)).toEqual([]);
    const again = await h.queue.add(BundlingJobName.delete, { imageId }, { jobId: `${bundlingJobId(BundlingJobName.delete, imageId)}-again` });
    await waitFor(async () => (await again.isCompleted()) || undefined, { what: 'the second delete' });
    expect((await h.queue.getJob(again.id!))?.returnvalue).toEqual({ deleted: 0 });
    expect(await h.store.exists(source.key)).toBe(true); // the upload is its owner's to remove
  });

  it("deletes a bundle when the catalog says its image was deregistered, and only then", async () => {
    const imageId = newImageId();
    const data = imageBytes(3 * 1024 * 1024);
    const source = { key: `uploads/${imageId}/image.raw`, ...(await putSourceImage(h.store, `uploads/${imageId}/image.raw`, data)) };
    await addBundleJob(h.queue, bundleJobData(imageId, source));
    expect((await waitForOutcome(testing, h.db, imageId, 30_000)).type).toBe(DomainEventType.bundleVerified);
    const stored = await bundleListing(h.store, imageId);
    expect(stored.length).toBeGreaterThanOrEqual(2);

    const { Queue } = await import('bullmq');
    const events = new Queue(EventQueue.bundling, { connection: { url: h.redis.url }, prefix: h.redis.prefix });
    const imageChanged = (state: string, revision: number) => {
      const id = `${imageId}-${revision}`;
      const payload = { imageId, ownerId: '123456789012', state, productCodes: [], revision };
      const job = { id, type: DomainEventType.imageChanged, payload, occurredAt: new Date().toISOString() };
      return events.add(DomainEventType.imageChanged, TestIdentities.shared().signedEvent('catalog', job, EventQueue.bundling), { jobId: id });
    };
    const available = await imageChanged('available', 2);
    await waitFor(async () => (await available.isCompleted()) || undefined, { what: 'the available event' });
    expect(await h.queue.getJob(bundlingJobId(BundlingJobName.delete, imageId))).toBeUndefined();
    expect(await bundleListing(h.store, imageId)).toEqual(stored);

    await imageChanged('deregistered', 3);
    await waitFor(async () => (await bundleListing(h.store, imageId)).length === 0, { what: 'the bundle to be deleted' });
    await events.close();
  });

  it('bundles a gzip bundle, an empty image, and removes the upload when asked', async () => {
    const imageId = newImageId();
    const source = { key: `uploads/${imageId}/image.raw`, ...(await putSourceImage(h.store, `uploads/${imageId}/image.raw`, Buffer.alloc(0))) };
    await addBundleJob(h.queue, bundleJobData(imageId, source, { compression: 'gzip', source: { key: source.key, deleteWhenBundled: true } }));
    const outcome = await waitForOutcome(testing, h.db, imageId);
    expect(outcome).toMatchObject({ type: DomainEventType.bundleVerified, payload: { imageSize: 0, imageDigest: source.sha256 } });
    const manifest = parseManifest((await readObject(h.store, BundleKeys.manifest(imageId)))!);
    expect(manifest.compression.algorithm).toBe('gzip');
    expect(await h.store.exists(source.key)).toBe(false);
  });

  it.each([
    ['SHA-256', { declaredSha256: 'f'.repeat(64) }, BundlingFailureCode.SourceDigestMismatch, /SHA-256 .* was declared/],
    ['size', { declaredSize: 1000 }, BundlingFailureCode.SourceSizeMismatch, /2000 bytes, but 1000 were declared/],
  ])('fails the image at once when the upload is not the declared %s, leaving no parts', async (_what, override, code, reason) => {
    const imageId = newImageId();
    const source = { key: `uploads/${imageId}/image.raw`, ...(await putSourceImage(h.store, `uploads/${imageId}/image.raw`, imageBytes(2000, 3))) };
    const job = await addBundleJob(h.queue, bundleJobData(imageId, source, override));
    const outcome = await waitForOutcome(testing, h.db, imageId);
    expect(outcome.type).toBe(DomainEventType.bundleFailed);
    expect(outcome.payload).toMatchObject({ imageId, code });
    expect((outcome.payload as { reason: string }).reason).toMatch(reason);
    await waitFor(async () => (await job.isFailed()) || undefined, { what: 'the job to fail' });
    expect((await h.queue.getJob(job.id!))?.attemptsMade).toBe(1); // not retried
    expect(await bundleListing(h.store, imageId)).toEqual([]);
    expect(await outcomeEvents(h.db, imageId)).toHaveLength(1);
  });

  it('fails the image when the upload is not in the store, and refuses an invalid job', async () => {
    const imageId = newImageId();
    await addBundleJob(h.queue, bundleJobData(imageId, { key: `uploads/${imageId}/nothing.raw`, size: 10, sha256: 'a'.repeat(64) }));
    expect(await waitForOutcome(testing, h.db, imageId)).toMatchObject({
      type: DomainEventType.bundleFailed,
      payload: { code: BundlingFailureCode.SourceMissing },
    });

    const other = newImageId();
    const bad = await h.queue.add(BundlingJobName.bundle, { imageId: other, ownerId: 'nobody' }, { jobId: bundlingJobId(BundlingJobName.bundle, other) });
    const outcome = await waitForOutcome(testing, h.db, other);
    expect(outcome.payload).toMatchObject({ code: BundlingFailureCode.InvalidJob });
    expect((outcome.payload as { reason: string }).reason).toMatch(/ownerId/);
    await waitFor(async () => (await bad.isFailed()) || undefined, { what: 'the invalid job to fail' });
  });

  it('fails a verify job whose manifest is missing', async () => {
    const imageId = newImageId();
    await h.queue.add(
      BundlingJobName.verify,
      { imageId, manifestKey: BundleKeys.manifest(imageId) },
      { jobId: bundlingJobId(BundlingJobName.verify, imageId) },
    );
    expect(await waitForOutcome(testing, h.db, imageId)).toMatchObject({
      type: DomainEventType.bundleFailed,
      payload: { code: BundlingFailureCode.ManifestMissing },
    });
  });
});
