/**
 * The verify side of the bundle benchmark, in a process of its own so that its peak RSS is its
 * alone. It runs the bundler-worker's own verify handler (`verifyBundle`, the code a `verify` job
 * runs, without the queue around it): the manifest and then every part read back from the
 * FilesystemObjectStore through `unbundle()`, which checks the signature and every part digest,
 * decrypts, decompresses and proves the SHA-256 of the original image (the image is discarded).
 * Run by bench/bundle.bench.ts, compiled to plain JavaScript first (see there).
 */
import { loadPrivateKey, loadPublicKey } from '@imagemart/bundle-format';
import { BundleKeys } from '@imagemart/contracts';
import { FilesystemObjectStore } from '@imagemart/object-store';
import { createLogger } from '@imagemart/observability';
import { verifyBundle } from '../../apps/bundler-worker/src/verify/verify.handler.js';
import { serveOnce, stats, type VerifyResultMessage } from './protocol.js';

serveOnce(async (run): Promise<VerifyResultMessage> => {
  const store = await FilesystemObjectStore.open({ root: run.storeRoot });
  const keys = {
    wrapping: { publicKey: loadPublicKey(run.wrappingPublicKey), privateKey: loadPrivateKey(run.wrappingPrivateKey) },
    signing: { publicKey: loadPublicKey(run.signingPublicKey), privateKey: loadPrivateKey(run.signingPrivateKey) },
  };
  const logger = createLogger({ service: 'bench', level: 'silent' });

  const startRssKiB = Math.round(process.memoryUsage.rss() / 1024);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const verified = await verifyBundle(
    { store, keys, logger },
    { imageId: run.imageId, manifestKey: BundleKeys.manifest(run.imageId) },
  );
  const measured = stats(started, cpuBefore, startRssKiB);
  await store.close();

  return { type: 'result', ...measured, digest: verified.imageDigest, size: verified.imageSize };
});
