/**
 * The bundle side of the bundle benchmark, in a process of its own so that its peak RSS is its
 * alone: what the bundler-worker does with an uploaded image. It reads the image from the store
 * as a stream (`store.get`), runs `bundle()` (zstd level 3, AES-256-GCM, 10 MiB parts) with a sink that awaits
 * `store.put` of each part in a FilesystemObjectStore, then stores the manifest. With
 * `sink: 'discard'` the parts and manifest are dropped instead (the pipeline alone).
 * Run by bench/bundle.bench.ts (forked with `--import tsx` from the repository root).
 */
import { Buffer } from 'node:buffer';
import { bundle, loadPrivateKey, loadPublicKey } from '@imagemart/bundle-format';
import { FilesystemObjectStore } from '@imagemart/object-store';
import { manifestKey, partKey, serveOnce, stats, type BundleResultMessage } from './protocol.js';

serveOnce(async (run): Promise<BundleResultMessage> => {
  const store = await FilesystemObjectStore.open({ root: run.storeRoot });
  const platformPublicKey = loadPublicKey(run.wrappingPublicKey);
  const signingKey = loadPrivateKey(run.signingPrivateKey);
  let putSeconds = 0;

  const startRssKiB = Math.round(process.memoryUsage.rss() / 1024);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const result = await bundle(await store.get(run.imageKey), {
    image: {
      name: 'bench-image',
      version: '1.0.0',
      description: 'A synthetic image for the bundle benchmark',
      user: '123456789012',
    },
    machineConfiguration: { architecture: 'x86_64', virtualizationType: 'hvm' },
    platformPublicKey,
    signingKey,
    compression: 'zstd',
    level: 3,
    onPart: async (part) => {
      if (run.sink === 'discard') return;
      const t = performance.now();
      await store.put(partKey(run.keyPrefix, part.filename), part.data, { contentLength: part.size });
      putSeconds += (performance.now() - t) / 1000;
    },
  });
  const key = manifestKey(run.keyPrefix);
  if (run.sink === 'store')
    await store.put(key, Buffer.from(result.manifestXml), { contentType: 'application/xml' });
  const measured = stats(started, cpuBefore, startRssKiB);
  await store.close();

  return {
    type: 'result',
    ...measured,
    imageDigest: result.imageDigest,
    imageSize: result.imageSize,
    bundledSize: result.bundledSize,
    parts: result.parts.length,
    putSeconds,
    manifestKey: key,
  };
});
