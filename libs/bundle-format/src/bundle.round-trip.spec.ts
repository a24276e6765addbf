import { Buffer } from 'node:buffer';
import { Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { compressBlock } from './block.codec.js';
import { DEFAULT_BLOCK_SIZE, DEFAULT_PART_SIZE, GCM_TAG_BYTES } from './bundle-format.constants.js';
import { bundle } from './bundle.writer.js';
import { unbundle } from './bundle.reader.js';
import { MemoryStore, bundleOptions, imageBytes, imageStream, sha256 } from './bundle.fixture.js';
import { generatePlatformKeys, type PlatformKeys } from './keys.crypto.js';

const MiB = 1024 * 1024;

function collector(): { output: Writable; data: () => Buffer } {
  const chunks: Buffer[] = [];
  const output = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  return { output, data: () => Buffer.concat(chunks) };
}

describe('bundle and unbundle round trip', () => {
  let keys: PlatformKeys;
  beforeAll(async () => {
    keys = await generatePlatformKeys();
  });

  async function roundTrip(
    size: number,
    overrides: Parameters<typeof bundleOptions>[2] = {},
    random = false,
  ) {
    const original = imageBytes(size, { random });
    const store = new MemoryStore();
    const result = await bundle(
      imageStream(size, { random, chunkSize: 300_000 }),
      bundleOptions(keys, store, overrides),
    );
    expect(result.imageDigest).toBe(sha256(original));
    expect(result.imageSize).toBe(size);
    expect(store.parts.size).toBe(result.parts.length);
    const partSize = overrides.partSize ?? DEFAULT_PART_SIZE;
    result.parts.forEach((p, i) => {
      expect(store.parts.get(p.filename)!.length).toBe(p.size);
      if (i < result.parts.length - 1) expect(p.size).toBe(partSize);
    });
    expect(result.bundledSize).toBe(result.parts.reduce((n, p) => n + p.size, 0));

    const out = collector();
    const verified = await unbundle(result.manifestXml, {
      readPart: store.read,
      privateKey: keys.wrapping.privateKey,
      signerPublicKey: keys.signing.publicKey,
      output: out.output,
    });
    expect(verified).toMatchObject({ digest: sha256(original), size });
    expect(out.data().equals(original)).toBe(true);
    return result;
  }

  it.each(['zstd', 'gzip'] as const)('restores a multi-part %s image bit for bit', async (compression) => {
    const result = await roundTrip(3 * MiB + 12345, {
      compression,
      partSize: 256 * 1024,
      blockSize: 256 * 1024,
    });
    expect(result.parts.length).toBeGreaterThan(3);
    expect(result.manifest.compression.algorithm).toBe(compression);
  });

  it.each([0, 1, DEFAULT_PART_SIZE - GCM_TAG_BYTES, DEFAULT_PART_SIZE, DEFAULT_PART_SIZE + 1])(
    'round-trips a %i-byte image with default sizes',
    async (size) => {
      await roundTrip(size, {}, true);
    },
  );

  it('round-trips an image of several 10 MiB parts', async () => {
    const result = await roundTrip(25 * MiB, {}, true);
    expect(result.parts.map((p) => p.size)).toEqual([
      DEFAULT_PART_SIZE,
      DEFAULT_PART_SIZE,
      result.bundledSize - 2 * DEFAULT_PART_SIZE,
    ]);
  });

  describe('compressed streams that end exactly at and around part boundaries', () => {
    const PLAIN = DEFAULT_PART_SIZE - GCM_TAG_BYTES; // compressed bytes a part holds

    async function compressedLength(size: number): Promise<number> {
      const data = imageBytes(size, { random: true });
      let total = 0;
      for (let at = 0; at < size; at += DEFAULT_BLOCK_SIZE) {
        total += (
          await compressBlock('zstd', 3, data.subarray(at, at + DEFAULT_BLOCK_SIZE), DEFAULT_BLOCK_SIZE)
        ).length;
      }
      return total;
    }

    /** The image size whose compressed stream is exactly `target` bytes (random data: raw blocks). */
    async function imageSizeFor(target: number): Promise<number> {
      let size = target;
      for (let i = 0; i < 8; i++) {
        const length = await compressedLength(size);
        if (length === target) return size;
        size += target - length;
      }
      throw new Error(`no image size compresses to ${target} bytes`);
    }

    it.each([
      ['one byte short of a full part', PLAIN - 1, [DEFAULT_PART_SIZE - 1]],
      ['exactly one full part', PLAIN, [DEFAULT_PART_SIZE]],
      ['one byte into a second part', PLAIN + 1, [DEFAULT_PART_SIZE, GCM_TAG_BYTES + 1]],
      ['exactly two full parts', 2 * PLAIN, [DEFAULT_PART_SIZE, DEFAULT_PART_SIZE]],
    ])('%s', async (_label, compressed, sizes) => {
      const size = await imageSizeFor(compressed);
      const result = await roundTrip(size, {}, true);
      expect(result.parts.map((p) => p.size)).toEqual(sizes);
      expect(result.bundledSize).toBe(compressed + GCM_TAG_BYTES * sizes.length);
    });
  });
});
