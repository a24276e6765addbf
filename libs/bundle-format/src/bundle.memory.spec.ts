import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unbundle } from './bundle.reader.js';
import { MemoryStore, bundleOptions, imageStream } from './bundle.fixture.js';
import { bundle, type BundlePart } from './bundle.writer.js';
import { generatePlatformKeys, type PlatformKeys } from './keys.crypto.js';

const MiB = 1024 * 1024;
const IMAGE = 512 * MiB;
/**
 * Peak RSS growth allowed, well under the image size. Measured here (2 cores): 130-150 MiB on
 * Node 20; 155-195 MiB on Node 24 with node:zlib's zstd (its 1 MiB output chunks, and a busy
 * machine's GC falling behind), most of it garbage the GC has not collected yet. What is held at
 * once does not depend on the image's size (a few blocks and parts: docs/bundle-format.md).
 */
const BOUND = 240 * MiB;

/** Samples the process's RSS; `peak()` is the highest seen since `reset()`. */
function rssSampler() {
  let peak = 0;
  const sample = () => (peak = Math.max(peak, process.memoryUsage.rss()));
  const timer = setInterval(sample, 5);
  return {
    reset: () => (peak = process.memoryUsage.rss()),
    peak: () => (sample(), peak),
    stop: () => clearInterval(timer),
  };
}

describe('memory stays bounded whatever the image size', () => {
  let keys: PlatformKeys;
  let dir: string;
  beforeAll(async () => {
    keys = await generatePlatformKeys();
    dir = await mkdtemp(join(tmpdir(), 'bundle-memory-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(
    `bundles and verifies ${IMAGE / MiB} MiB with far less memory than that`,
    { timeout: 120_000 },
    async () => {
      const rss = rssSampler();
      try {
        const base = rss.reset();
        const sink = (part: BundlePart) => writeFile(join(dir, part.filename), part.data);
        const { manifestXml } = await bundle(
          imageStream(IMAGE),
          bundleOptions(keys, new MemoryStore(), { onPart: sink }),
        );
        const bundling = rss.peak() - base;
        rss.reset();
        await unbundle(manifestXml, {
          readPart: (part) => createReadStream(join(dir, part.filename), { highWaterMark: MiB }),
          privateKey: keys.wrapping.privateKey,
          signerPublicKey: keys.signing.publicKey,
        });
        const overall = rss.peak() - base;
        console.log(
          `peak RSS growth over ${(base / MiB).toFixed(0)} MiB: ${(bundling / MiB).toFixed(0)} MiB bundling, ${(overall / MiB).toFixed(0)} MiB overall (image ${IMAGE / MiB} MiB)`,
        );
        expect(bundling).toBeLessThan(BOUND);
        expect(overall).toBeLessThan(BOUND);
      } finally {
        rss.stop();
      }
    },
  );
});
