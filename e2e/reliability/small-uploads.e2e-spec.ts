import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@imagemart/testing';
import { http, Platform, ROOT, type TestAccount } from '../support/platform.js';
import { ReliabilityRecorder } from './reliability-report.js';

/**
 * Small uploads one after another, as the mixed load makes them, on the filesystem object store.
 * The store removes a directory once its last object goes (as S3 has no empty directories): when
 * the bundler deletes the parts of the last upload it bundled, `uploads/` itself goes, while the
 * gateway may be making `uploads/<id>/` for a new part in it. Each upload here starts once the one
 * before is bundled (so `uploads/` is empty, as at a low upload rate), while another writer of the
 * same store root puts and deletes an upload's part in a loop, so that `uploads/` comes and goes
 * all the time. Every part must still be stored (200, with its SHA-256), every image must end
 * available.
 */
const UPLOADS = Number(process.env['SMALL_UPLOADS'] ?? 50);
const SIZE = 16 * 1024;

let platform: Platform;
let base: string;
let seller: TestAccount;
const objectRoot = join(ROOT, '.data', `objects-small-uploads-${randomUUID().slice(0, 8)}`);
const report = new ReliabilityRecorder('small-uploads');

beforeAll(async () => {
  platform = await Platform.start('small-uploads', {
    OBJECT_STORE_DRIVER: 'fs',
    OBJECT_STORE_ROOT: objectRoot,
    RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '0',
    RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
  });
  base = platform.baseUrl;
  seller = await platform.createAccount(['seller']);
}, 120_000);

afterAll(async () => {
  await platform?.stop();
  await rm(objectRoot, { recursive: true, force: true });
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** One small upload from start to complete; the failures it met, if any. */
async function smallUpload(n: number): Promise<{ imageId?: string; error?: string }> {
  const data = randomBytes(SIZE);
  const created = await http(base, 'POST', '/v1/uploads', {
    key: seller.key,
    body: { name: `small-upload-${n}-${randomUUID().slice(0, 6)}`, architecture: 'arm64', size: data.length, sha256: sha256(data) },
  });
  if (created.status !== 201) return { error: `create ${created.status} ${JSON.stringify(created.body)}` };
  const { uploadId, imageId } = created.body as { uploadId: string; imageId: string };
  const put = await fetch(`${base}/v1/uploads/${uploadId}/parts/1`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${seller.key}`, 'content-type': 'application/octet-stream' },
    body: data,
  });
  if (put.status !== 200) return { error: `part ${put.status} ${await put.text()}` };
  const part = (await put.json()) as { sha256?: string };
  if (part.sha256 !== sha256(data)) return { error: `part stored with SHA-256 ${part.sha256}` };
  const done = await http(base, 'POST', `/v1/uploads/${uploadId}/complete`, { key: seller.key });
  if (done.status !== 200) return { error: `complete ${done.status} ${JSON.stringify(done.body)}` };
  // Bundled and verified: the bundler has deleted the upload's part, and `uploads/` with it.
  const state = await waitFor(
    async () => {
      const s = (await http(base, 'GET', `/v1/images/${imageId}`, { key: seller.key })).body.state as string;
      return s === 'pending' ? undefined : s;
    },
    { timeoutMs: 60_000, intervalMs: 50, what: `${imageId} to be bundled` },
  );
  if (state !== 'available') return { error: `image ${imageId} ended ${state}` };
  return { imageId };
}

describe('small uploads', () => {
  it(`${UPLOADS} uploads while their directory comes and goes: every part stored, every image available`, async () => {
    // Another writer of the same store root: an upload's part stored, then deleted as the bundler
    // deletes a bundled upload's parts, the emptied directories going with it (as the store prunes them).
    const uploadsDir = join(objectRoot, 'uploads');
    let churning = true;
    let churned = 0;
    const churn = (async () => {
      while (churning) {
        const dir = join(uploadsDir, `upl-churn${randomBytes(6).toString('hex')}`);
        await mkdir(dir, { recursive: true }).catch(() => undefined);
        await writeFile(join(dir, 'part-1'), 'x').catch(() => undefined);
        await rm(join(dir, 'part-1'), { force: true });
        await rmdir(dir).catch(() => undefined);
        await rmdir(uploadsDir).catch(() => undefined); // only if empty, as the store's prune
        churned++;
      }
    })();

    const errors: string[] = [];
    const imageIds: string[] = [];
    try {
      for (let n = 0; n < UPLOADS; n++) {
        const result = await smallUpload(n).catch((err: unknown) => ({ error: (err as Error).message, imageId: undefined }));
        if (result.error) errors.push(result.error);
        if (result.imageId) imageIds.push(result.imageId);
      }
    } finally {
      churning = false;
      await churn;
    }
    // How often the gateway found the directory gone and stored the part again.
    const storedAgain = platform.logs().split('its directory was removed meanwhile').length - 1;
    report.add({ load_errors: errors.length }, { name: 'small_uploads', value: { uploads: UPLOADS, churned, storedAgain, errors: errors.slice(0, 10) } });
    expect(churned).toBeGreaterThan(UPLOADS);
    expect(errors.slice(0, 10)).toEqual([]);
    expect(imageIds).toHaveLength(UPLOADS);
    // Nothing of the uploads is left behind in the store.
    expect((await readdir(uploadsDir).catch(() => [])).filter((name) => !name.startsWith('upl-churn'))).toEqual([]);
  }, 600_000);
});
