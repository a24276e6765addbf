/**
 * The verify side of the bundle benchmark, in a process of its own so that its peak RSS is its
 * alone: what the verify job does before an image becomes `available`. It reads the manifest
 * and then every part back from the FilesystemObjectStore and runs `unbundle()`, which checks
 * the signature and every part digest, decrypts, decompresses and proves the SHA-256 of the
 * original image (the image itself is discarded).
 * Run by bench/bundle.bench.ts (forked with `--import tsx` from the repository root).
 */
import { Buffer } from 'node:buffer';
import { loadPrivateKey, loadPublicKey, unbundle } from '@imagemart/bundle-format';
import { FilesystemObjectStore } from '@imagemart/object-store';
import { manifestKey, partKey, serveOnce, stats, type VerifyResultMessage } from './protocol.js';

serveOnce(async (run): Promise<VerifyResultMessage> => {
  const store = await FilesystemObjectStore.open({ root: run.storeRoot });
  const privateKey = loadPrivateKey(run.wrappingPrivateKey);
  const signerPublicKey = loadPublicKey(run.signingPublicKey);

  const startRssKiB = Math.round(process.memoryUsage.rss() / 1024);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const chunks: Buffer[] = [];
  for await (const chunk of await store.get(manifestKey(run.keyPrefix))) chunks.push(chunk as Buffer);
  const result = await unbundle(Buffer.concat(chunks), {
    readPart: (part) => store.get(partKey(run.keyPrefix, part.filename)),
    privateKey,
    signerPublicKey,
  });
  const measured = stats(started, cpuBefore, startRssKiB);
  await store.close();

  return { type: 'result', ...measured, digest: result.digest, size: result.size };
});
