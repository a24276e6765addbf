/**
 * The bundle side of the bundle benchmark, in a process of its own so that its peak RSS is its
 * alone. It runs the bundler-worker's own bundle handler (`bundleImage`, the code a `bundle` job
 * runs, without the queue around it) on an image uploaded to a FilesystemObjectStore: `store.get`
 * of the upload → `bundle()` (zstd level 3, AES-256-GCM, 10 MiB parts) → `store.put` of each part
 * under `bundles/<imageId>/`, then the manifest. With `sink: 'discard'` the same handler runs on
 * a store whose puts drop the bytes (the pipeline alone).
 * Run by bench/bundle.bench.ts, compiled to plain JavaScript first (see there).
 */
import { loadPrivateKey, loadPublicKey } from '@imagemart/bundle-format';
import { bundleJobSchema } from '@imagemart/contracts';
import { FilesystemObjectStore, type ObjectStore } from '@imagemart/object-store';
import { createLogger } from '@imagemart/observability';
import { bundleImage } from '../../apps/bundler-worker/src/bundle/bundle.handler.js';
import { serveOnce, stats, type BundleResultMessage } from './protocol.js';

/** Times every put; with `discard`, a put reads its body and keeps nothing. */
function measured(store: ObjectStore, discard: boolean, onPut: (seconds: number) => void): ObjectStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property !== 'put') return Reflect.get(target, property, receiver) as unknown;
      const put: ObjectStore['put'] = async (key, body, options) => {
        const t = performance.now();
        try {
          if (!discard) return await target.put(key, body, options);
          let size = 0;
          for await (const chunk of Buffer.isBuffer(body) ? [body] : body) size += (chunk as Buffer).length;
          return { key, size };
        } finally {
          onPut((performance.now() - t) / 1000);
        }
      };
      return put;
    },
  });
}

serveOnce(async (run): Promise<BundleResultMessage> => {
  const fsStore = await FilesystemObjectStore.open({ root: run.storeRoot });
  let putSeconds = 0;
  const store = measured(fsStore, run.sink === 'discard', (s) => (putSeconds += s));
  const keys = {
    wrapping: { publicKey: loadPublicKey(run.wrappingPublicKey), privateKey: loadPrivateKey(run.wrappingPrivateKey) },
    signing: { publicKey: loadPublicKey(run.signingPublicKey), privateKey: loadPrivateKey(run.signingPrivateKey) },
  };
  const job = bundleJobSchema.parse({
    imageId: run.imageId,
    ownerId: '123456789012',
    source: { key: run.imageKey },
    declaredSize: run.imageSize,
    declaredSha256: run.imageSha256,
    compression: 'zstd',
    image: {
      name: 'bench-image',
      version: '1.0.0',
      description: 'A synthetic image for the bundle benchmark',
      architecture: 'x86_64',
      virtualizationType: 'hvm',
    },
  });
  const logger = createLogger({ service: 'bench', level: 'silent' });

  const startRssKiB = Math.round(process.memoryUsage.rss() / 1024);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const result = await bundleImage({ store, keys, logger, partConcurrency: run.partConcurrency }, job);
  const measuredStats = stats(started, cpuBefore, startRssKiB);
  await store.close();

  return {
    type: 'result',
    ...measuredStats,
    imageDigest: result.imageDigest,
    imageSize: result.imageSize,
    bundledSize: result.bundledSize,
    parts: result.parts,
    putSeconds,
    manifestKey: result.manifestKey,
  };
});
