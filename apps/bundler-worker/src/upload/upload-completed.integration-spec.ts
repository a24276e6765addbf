import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '@imagemart/bundle-format';
import {
  BundleKeys,
  BundlingFailureCode,
  BundlingJobName,
  DomainEventType,
  EventQueue,
  bundlingJobId,
  type BundleFailed,
  type UploadCompleted,
} from '@imagemart/contracts';
import * as testing from '@imagemart/testing';
import { TestIdentities, waitFor } from '@imagemart/testing';
import { readObject } from '../storage/bundle-storage.js';
import {
  addBundleJob,
  bundleJobData,
  bundleListing,
  imageBytes,
  newImageId,
  startHarness,
  waitForOutcome,
  type BundlerHarness,
} from '../testing/bundler-harness.js';

/**
 * A completed upload reaches the worker as `catalog.upload.completed` on its event queue and
 * becomes the image's bundle job (id `bundle-<imageId>`), whose source is the upload's parts read
 * in order as one stream; the parts are removed once the bundle is stored, or when the job fails
 * for good. The S3 driver, as in production.
 */
let h: BundlerHarness;
let events: Queue;
let n = 0;
const uploadId = () => `upl-${createHash('sha256').update(`u${++n}-${Date.now()}`).digest('hex').slice(0, 17)}`;

beforeAll(async () => {
  h = await startHarness('upload-completed', 's3', testing);
  await h.startWorker();
  events = new Queue(EventQueue.bundling, { connection: { url: h.redis.url }, prefix: h.redis.prefix });
});
afterAll(async () => {
  await events?.close();
  await h?.stop();
});

/** Puts `data` as parts of `partSize` bytes; returns their keys in order. */
async function putParts(upload: string, data: Buffer, partSize: number): Promise<string[]> {
  const keys: string[] = [];
  for (let at = 0, p = 1; at < data.length; at += partSize, p++) {
    const part = data.subarray(at, at + partSize);
    const key = `uploads/${upload}/part-${p}`;
    await h.store.put(key, Readable.from([part]), { contentLength: part.length });
    keys.push(key);
  }
  return keys;
}

function completed(imageId: string, upload: string, parts: string[], data: Buffer, sha256?: string): UploadCompleted {
  return {
    uploadId: upload,
    imageId,
    ownerId: '123456789012',
    parts,
    size: data.length,
    sha256: sha256 ?? createHash('sha256').update(data).digest('hex'),
    compression: 'zstd',
    image: { name: 'Uploaded image', version: '1.0', architecture: 'x86_64', virtualizationType: 'hvm', blockDeviceMapping: [], productCodes: [] },
  };
}

async function deliver(payload: UploadCompleted, id = `${payload.uploadId}-completed`): Promise<void> {
  const type = DomainEventType.uploadCompleted;
  const job = { id, type, payload, requestId: `req-${payload.uploadId}`, occurredAt: new Date().toISOString() };
  await events.add(type, TestIdentities.shared().signedEvent('catalog', job, EventQueue.bundling), { jobId: id });
  await waitFor(async () => ['completed', 'failed'].includes(await events.getJobState(id)), { what: 'the event handled' });
  expect(await events.getJobState(id)).toBe('completed');
}

describe('catalog.upload.completed', () => {
  it('queues the bundle job, bundles the parts in their order, verifies, and removes the parts', async () => {
    const imageId = newImageId();
    const upload = uploadId();
    const data = imageBytes(3 * 1024 * 1024 + 777, 7);
    const parts = await putParts(upload, data, 1024 * 1024);
    await deliver(completed(imageId, upload, parts, data));
    // Delivered twice (a relay that ran twice): still one job.
    await deliver(completed(imageId, upload, parts, data), `${upload}-again`);

    const job = await h.queue.getJob(bundlingJobId(BundlingJobName.bundle, imageId));
    expect(job?.data).toMatchObject({ source: { parts, deleteWhenBundled: true }, declaredSize: data.length, requestId: `req-${upload}` });
    const outcome = await waitForOutcome(testing, h.db, imageId, 30_000);
    expect(outcome.type, JSON.stringify(outcome.payload)).toBe(DomainEventType.bundleVerified);
    expect(outcome.payload).toMatchObject({ imageSize: data.length, imageDigest: createHash('sha256').update(data).digest('hex') });
    const manifest = parseManifest((await readObject(h.store, BundleKeys.manifest(imageId)))!);
    expect(manifest.image.size).toBe(data.length);
    await waitFor(async () => (await h.store.list(`uploads/${upload}/`)).keys.length === 0, { what: 'the parts removed' });
  });

  it('reads parts in the order given: swapped parts are another image (SourceDigestMismatch), and the parts go', async () => {
    const imageId = newImageId();
    const upload = uploadId();
    const data = imageBytes(2 * 1024 * 1024, 8);
    const [first, second] = await putParts(upload, data, 1024 * 1024);
    await deliver(completed(imageId, upload, [second, first], data));
    const outcome = await waitForOutcome(testing, h.db, imageId, 30_000);
    expect(outcome.type).toBe(DomainEventType.bundleFailed);
    expect((outcome.payload as BundleFailed).code).toBe(BundlingFailureCode.SourceDigestMismatch);
    await waitFor(async () => (await h.store.list(`uploads/${upload}/`)).keys.length === 0, { what: 'the parts removed' });
    expect(await bundleListing(h.store, imageId)).toEqual([]);
  });

  it('fails for a missing part (SourceMissing) or parts of another total size (SourceSizeMismatch)', async () => {
    const data = imageBytes(2 * 1024 * 1024, 9);
    const missingImage = newImageId();
    const upload = uploadId();
    const parts = await putParts(upload, data, 1024 * 1024);
    await addBundleJob(h.queue, {
      ...bundleJobData(missingImage, { key: 'x', size: data.length, sha256: createHash('sha256').update(data).digest('hex') }),
      source: { parts: [...parts, `uploads/${upload}/part-3`] },
    });
    const missing = await waitForOutcome(testing, h.db, missingImage, 30_000);
    expect(missing.payload).toMatchObject({ code: BundlingFailureCode.SourceMissing });
    expect((missing.payload as BundleFailed).reason).toContain(`uploads/${upload}/part-3`);
    // Without deleteWhenBundled the parts stay.
    expect((await h.store.list(`uploads/${upload}/`)).keys).toHaveLength(2);

    const shortImage = newImageId();
    await addBundleJob(h.queue, {
      ...bundleJobData(shortImage, { key: 'x', size: data.length + 1, sha256: '0'.repeat(64) }),
      source: { parts },
    });
    const short = await waitForOutcome(testing, h.db, shortImage, 30_000);
    expect(short.payload).toMatchObject({ code: BundlingFailureCode.SourceSizeMismatch });
  });
});
