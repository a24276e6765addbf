import { Buffer } from 'node:buffer';
import { constants, gzipSync, zstdCompressSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { BundleErrorCode, BundleFormatError } from './bundle-format.exception.js';
import { unbundle } from './bundle.reader.js';
import { craftBundle, imageBytes, sha256, type CraftedBundle } from './bundle.fixture.js';
import { generatePlatformKeys, type PlatformKeys } from './keys.crypto.js';

/**
 * What docs/bundle-format.md makes a reader do with the parts of RFC 8878 and RFC 1952 that our
 * writer never uses, on bundles made by hand (and signed, as a registered seller could): zstd
 * skippable frames, content checksums and dictionaries, gzip member boundaries and trailing bytes.
 */

const BLOCK = 1024;
const IMAGE = imageBytes(5 * BLOCK + 300, { seed: 7 });

const blocks = (image: Buffer) =>
  Array.from({ length: Math.max(1, Math.ceil(image.length / BLOCK)) }, (_, i) =>
    image.subarray(i * BLOCK, (i + 1) * BLOCK),
  );

/** One zstd frame per block; `checksum` sets Content_Checksum_flag. */
const zstdFrames = (image: Buffer, checksum = false) =>
  blocks(image).map((block) =>
    zstdCompressSync(block, {
      params: { [constants.ZSTD_c_compressionLevel]: 3, [constants.ZSTD_c_checksumFlag]: checksum ? 1 : 0 },
    }),
  );

/** A skippable frame of `size` bytes of user data. */
function skippable(size: number, magicLowNibble = 0): Buffer {
  const frame = Buffer.alloc(8 + size, 0x5a);
  frame.writeUInt32LE(0x184d2a50 + magicLowNibble, 0);
  frame.writeUInt32LE(size, 4);
  return frame;
}

describe('a reader of bundles made by other writers', () => {
  let keys: PlatformKeys;

  beforeAll(async () => {
    keys = await generatePlatformKeys();
  });

  function verify(compressed: Buffer, overrides: Partial<CraftedBundle> = {}) {
    const { xml, store } = craftBundle(keys, {
      compressed,
      algorithm: 'zstd',
      blockSize: BLOCK,
      partSize: 512,
      imageSize: IMAGE.length,
      imageDigest: sha256(IMAGE),
      ...overrides,
    });
    return unbundle(xml, {
      readPart: store.read,
      privateKey: keys.wrapping.privateKey,
      signerPublicKey: keys.signing.publicKey,
    });
  }

  async function failure(promise: Promise<unknown>): Promise<BundleFormatError> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BundleFormatError);
    return error as BundleFormatError;
  }

  describe('zstd', () => {
    it('skips skippable frames before, between and after frames, across parts, without counting them', async () => {
      const frames = zstdFrames(IMAGE);
      const compressed = Buffer.concat([
        skippable(5),
        frames[0],
        skippable(700, 0xf), // longer than a part's plaintext: skipped across parts
        ...frames.slice(1, 3),
        skippable(0, 3),
        ...frames.slice(3),
        skippable(40),
      ]);
      const result = await verify(compressed);
      expect(result).toMatchObject({ digest: sha256(IMAGE), size: IMAGE.length });
    });

    it('refuses a stream that ends inside a skippable frame, or holds nothing else', async () => {
      const frames = zstdFrames(IMAGE);
      const cut = skippable(100).subarray(0, 50);
      expect((await failure(verify(Buffer.concat([...frames, cut])))).code).toBe(
        BundleErrorCode.DecompressionFailed,
      );
      const empty = { imageSize: 0, imageDigest: sha256(Buffer.alloc(0)) };
      expect((await failure(verify(skippable(10), empty))).code).toBe(BundleErrorCode.DecompressionFailed);
    });

    it('verifies a content checksum: a right one passes, a wrong one fails', async () => {
      const frames = zstdFrames(IMAGE, true);
      expect(frames[0][4] & 0x04).toBe(0x04); // Content_Checksum_flag
      await expect(verify(Buffer.concat(frames))).resolves.toMatchObject({ digest: sha256(IMAGE) });
      const wrong = frames.map((f) => Buffer.from(f));
      wrong[2][wrong[2].length - 1] ^= 0xff; // the checksum is the frame's last 4 bytes
      const error = await failure(verify(Buffer.concat(wrong)));
      expect(error.code).toBe(BundleErrorCode.DecompressionFailed);
    });

    it('refuses a frame that needs a dictionary', async () => {
      const frames = zstdFrames(IMAGE).map((f) => Buffer.from(f));
      // Frame header with a 1-byte Dictionary_ID of 7: descriptor gets Dictionary_ID_flag 1.
      const first = frames[0];
      const withDictionary = Buffer.concat([first.subarray(0, 4), Buffer.from([first[4] | 0x01])]);
      const singleSegment = (first[4] & 0x20) !== 0;
      const rest = first.subarray(5);
      const patched = singleSegment
        ? Buffer.concat([withDictionary, Buffer.from([7]), rest])
        : Buffer.concat([withDictionary, rest.subarray(0, 1), Buffer.from([7]), rest.subarray(1)]);
      const error = await failure(verify(Buffer.concat([patched, ...frames.slice(1)])));
      expect(error.code).toBe(BundleErrorCode.DecompressionFailed);
      expect(error.message).toMatch(/dictionary/);
    });
  });

  describe('gzip', () => {
    const gzip = (compressed: Buffer) => verify(compressed, { algorithm: 'gzip' });

    it('reads members of any size, wherever their boundaries fall', async () => {
      // One member for the whole image, as gzip(1) writes it.
      await expect(gzip(gzipSync(IMAGE))).resolves.toMatchObject({ digest: sha256(IMAGE) });
      // Members that cut blocks anywhere.
      const cuts = [0, 100, 1500, 1501, 4000, IMAGE.length];
      const members = cuts.slice(1).map((end, i) => gzipSync(IMAGE.subarray(cuts[i], end)));
      await expect(gzip(Buffer.concat(members))).resolves.toMatchObject({ digest: sha256(IMAGE) });
    });

    it('refuses bytes after the last member, zero padding included', async () => {
      const padded = await failure(gzip(Buffer.concat([gzipSync(IMAGE), Buffer.alloc(8)])));
      expect(padded.code).toBe(BundleErrorCode.DecompressionFailed);
      expect(padded.message).toMatch(/8 bytes after its last member/);
      const garbage = await failure(gzip(Buffer.concat([gzipSync(IMAGE), Buffer.from('trailing garbage')])));
      expect(garbage.code).toBe(BundleErrorCode.DecompressionFailed);
      // Zero bytes, then another member: zlib would stop at the zeros and drop the member.
      const hidden = await failure(
        gzip(
          Buffer.concat([gzipSync(IMAGE.subarray(0, 100)), Buffer.alloc(4), gzipSync(IMAGE.subarray(100))]),
        ),
      );
      expect(hidden.code).toBe(BundleErrorCode.DecompressionFailed);
    });

    it('refuses a member whose CRC does not match', async () => {
      const member = gzipSync(IMAGE);
      member[member.length - 6] ^= 0x01; // in the CRC-32 of the trailer
      expect((await failure(gzip(member))).code).toBe(BundleErrorCode.DecompressionFailed);
    });
  });
});
