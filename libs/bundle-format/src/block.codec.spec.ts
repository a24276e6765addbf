import { Buffer } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  compressBlock,
  joinedView,
  maxFrameDecodedBound,
  rawZstdFrame,
  scanZstdFrame,
} from './block.codec.js';
import { MemoryStore, bundleOptions, imageBytes, imageStream } from './bundle.fixture.js';
import { bundle, type BundleResult } from './bundle.writer.js';
import { generatePlatformKeys, type PlatformKeys } from './keys.crypto.js';
import { openPart } from './part.cipher.js';

const KiB = 1024;
const hasCli = (tool: string) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;
const ZSTD_CLI = hasCli('zstd');
const GZIP_CLI = hasCli('gzip');

/** The compressed stream inside a bundle: every part opened with the (test) data key. */
function compressedStream(result: BundleResult, store: MemoryStore, dataKey: Buffer): Buffer {
  const salt = Buffer.from(result.manifest.encryption.salt, 'hex');
  const last = result.parts.length - 1;
  return Buffer.concat(
    result.parts.map((p) => openPart(dataKey, salt, p.index, p.index === last, store.parts.get(p.filename)!)),
  );
}

describe('block compression', () => {
  let keys: PlatformKeys;
  const dataKey = randomBytes(32);
  const image = imageBytes(1200 * KiB);
  beforeAll(async () => {
    keys = await generatePlatformKeys();
  });

  async function bundled(compression: 'zstd' | 'gzip') {
    const store = new MemoryStore();
    const result = await bundle(
      imageStream(image.length),
      bundleOptions(keys, store, {
        compression,
        blockSize: 256 * KiB,
        partSize: 100 * KiB,
        testing: { dataKey },
      }),
    );
    return compressedStream(result, store, dataKey);
  }

  it('concatenates zstd frames into one stream that a streaming zstd decoder reads as a whole', async () => {
    const stream = await bundled('zstd');
    expect(zstdDecompressSync(stream).equals(image)).toBe(true);
  });

  it.skipIf(!ZSTD_CLI)(
    '... and so does the zstd command-line tool (skipped when it is not installed)',
    async () => {
      const stream = await bundled('zstd');
      const out = spawnSync('zstd', ['-d', '-c'], { input: stream, maxBuffer: 64 * 1024 * 1024 });
      expect(out.status).toBe(0);
      expect(out.stdout.equals(image)).toBe(true);
    },
  );

  it('concatenates gzip members that zlib and gunzip read as one stream', async () => {
    const stream = await bundled('gzip');
    expect(gunzipSync(stream).equals(image)).toBe(true);
    if (GZIP_CLI) {
      const out = spawnSync('gzip', ['-d', '-c'], { input: stream, maxBuffer: 64 * 1024 * 1024 });
      expect(out.stdout.equals(image)).toBe(true);
    }
  });

  it('honours the zstd level', async () => {
    const block = image.subarray(512 * KiB, 768 * KiB); // the text half of the first MiB
    const [fast, strong] = await Promise.all([
      compressBlock('zstd', 1, block, block.length),
      compressBlock('zstd', 19, block, block.length),
    ]);
    expect(fast.equals(strong)).toBe(false);
    expect(strong.length).toBeLessThan(fast.length);
  });

  it('writes raw frames that standard decoders accept', () => {
    for (const data of [Buffer.alloc(0), Buffer.from('x'), randomBytes(300 * KiB)]) {
      const frame = rawZstdFrame(data);
      expect(zstdDecompressSync(frame).equals(data)).toBe(true);
      if (ZSTD_CLI) expect(spawnSync('zstd', ['-d', '-c'], { input: frame }).stdout.equals(data)).toBe(true);
    }
  });

  it('finds frame boundaries from block headers, across two buffers too', async () => {
    const frames = await Promise.all(
      [image.subarray(0, 200 * KiB), Buffer.alloc(0), image.subarray(5 * KiB, 6 * KiB)].map((b) =>
        compressBlock('zstd', 3, b, 256 * KiB),
      ),
    );
    const stream = Buffer.concat(frames);
    let at = 0;
    for (const frame of frames) {
      const scan = scanZstdFrame(stream, at, maxFrameDecodedBound(256 * KiB));
      expect(scan).toMatchObject({ length: frame.length });
      at += frame.length;
    }
    // Every proper prefix of a frame is incomplete; split anywhere, the joined view finds it whole.
    for (const cut of [1, 4, 5, 6, 9, 100, frames[0].length - 1]) {
      expect(scanZstdFrame(frames[0].subarray(0, cut), 0, Infinity)).toBe('incomplete');
      expect(
        scanZstdFrame(joinedView(frames[0].subarray(0, cut), frames[0].subarray(cut)), 0, Infinity),
      ).toMatchObject({ length: frames[0].length });
    }
  });

  it('refuses a frame whose blocks could decode past the bound, before reading it all', () => {
    const frame = rawZstdFrame(Buffer.alloc(600 * KiB));
    expect(scanZstdFrame(frame.subarray(0, 300 * KiB), 0, 256 * KiB)).toBe('too-large');
    expect(() => scanZstdFrame(Buffer.from('not zstd at all'), 0, Infinity)).toThrow(/not valid zstd/);
  });
});
