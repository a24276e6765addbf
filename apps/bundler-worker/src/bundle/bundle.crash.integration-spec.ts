import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '@imagemart/bundle-format';
import { BundleKeys, BundlingJobName, DomainEventType, bundlingJobId } from '@imagemart/contracts';
import * as testing from '@imagemart/testing';
import { waitFor } from '@imagemart/testing';
import { readObject } from '../storage/bundle-storage.js';
import {
  addBundleJob,
  bundleJobData,
  bundleListing,
  newImageId,
  outcomeEvents,
  startHarness,
  waitForOutcome,
  type BundlerHarness,
  type StoreDriver,
} from '../testing/bundler-harness.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const MiB = 1024 * 1024;

/** A real bundler-worker process (its main.ts under tsx), with the harness's environment. */
function spawnWorker(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'apps/bundler-worker/src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}

/**
 * Crash safety: a worker killed with SIGKILL in the middle of a bundle leaves parts and no
 * manifest; BullMQ's stalled-job check hands the job to another worker, which removes the stale
 * parts, bundles again and verifies. In the end the store holds exactly the manifest and its parts.
 */
describe.each<StoreDriver>(['fs', 's3'])('a bundle job whose worker is killed mid-bundle (%s store)', (driver) => {
  let h: BundlerHarness;
  let worker: ReturnType<typeof spawnWorker> | undefined;

  beforeAll(async () => {
    h = await startHarness(`crash-${driver}`, driver, testing);
  });
  afterAll(async () => {
    worker?.child.kill('SIGKILL');
    await h?.stop();
  });

  it('is finished by a second worker, with no orphan parts and no half-written manifest', { timeout: 120_000 }, async () => {
    const imageId = newImageId();
    const size = 160 * MiB; // incompressible: 17 parts, long enough to be caught in the middle
    const hash = createHash('sha256');
    const chunks = function* () {
      for (let at = 0; at < size; at += 4 * MiB) {
        const chunk = randomBytes(Math.min(4 * MiB, size - at));
        hash.update(chunk);
        yield chunk;
      }
    };
    const key = `uploads/${imageId}/image.raw`;
    await h.store.put(key, Readable.from(chunks()), { contentLength: size });
    const source = { key, size, sha256: hash.digest('hex') };

    worker = spawnWorker(h.env);
    await addBundleJob(h.queue, bundleJobData(imageId, source));
    const manifestKey = BundleKeys.manifest(imageId);
    // Kill it once some parts are stored, before the manifest.
    const seen = await waitFor(
      async () => {
        const keys = await bundleListing(h.store, imageId);
        return keys.length >= 3 ? keys : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 20, what: `parts of ${imageId} (worker output: ${worker.output()})` },
    );
    worker.child.kill('SIGKILL');
    await new Promise((resolve) => worker!.child.once('exit', resolve));
    expect(seen).not.toContain(manifestKey);
    const left = await bundleListing(h.store, imageId);
    expect(left).not.toContain(manifestKey);
    expect(left.length).toBeGreaterThanOrEqual(3);
    expect((await outcomeEvents(h.db, imageId))).toEqual([]);

    // A second worker (short lock and stalled-check interval from the harness) takes the job over.
    await h.startWorker();
    const outcome = await waitForOutcome(testing, h.db, imageId, 90_000);
    expect(outcome).toMatchObject({
      type: DomainEventType.bundleVerified,
      payload: { imageId, imageSize: size, imageDigest: source.sha256, manifestLocation: manifestKey },
    });
    const manifest = parseManifest((await readObject(h.store, manifestKey))!);
    expect((await bundleListing(h.store, imageId)).sort()).toEqual(
      [manifestKey, ...manifest.parts.map((p) => BundleKeys.part(manifestKey, p.filename))].sort(),
    );
    const job = await h.queue.getJob(bundlingJobId(BundlingJobName.bundle, imageId));
    expect(await job?.getState()).toBe('completed');
    expect(job?.stalledCounter).toBeGreaterThanOrEqual(1);
    expect((await outcomeEvents(h.db, imageId)).map((e) => e.type)).toEqual([DomainEventType.bundleVerified]);
  });
});
