import { Buffer } from 'node:buffer';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { BundleErrorCode } from './bundle-format.exception.js';
import { MemoryStore, bundleOptions, imageStream } from './bundle.fixture.js';
import { bundle, defaultPartPrefix, type BundlePart } from './bundle.writer.js';
import { generatePlatformKeys, type PlatformKeys } from './keys.crypto.js';

const KiB = 1024;

describe('bundle()', () => {
  let keys: PlatformKeys;
  beforeAll(async () => {
    keys = await generatePlatformKeys();
  });

  it('checks metadata and keys before it reads a byte of the image', async () => {
    let read = false;
    const source = Readable.from(
      (function* () {
        read = true;
        yield Buffer.alloc(10);
      })(),
    );
    const store = new MemoryStore();
    const bad = bundleOptions(keys, store);
    await expect(
      bundle(source, {
        ...bad,
        machineConfiguration: { ...bad.machineConfiguration, architecture: 'sparc' as 'arm64' },
      }),
    ).rejects.toMatchObject({
      code: BundleErrorCode.InvalidParameter,
      message: expect.stringContaining('architecture must be one of i386, x86_64, arm64'),
    });
    await expect(bundle(source, { ...bad, image: { ...bad.image, user: '42' } })).rejects.toMatchObject({
      code: BundleErrorCode.InvalidParameter,
    });
    await expect(bundle(source, { ...bad, platformPublicKey: keys.signing.publicKey })).rejects.toMatchObject(
      { code: BundleErrorCode.InvalidKey },
    );
    await expect(bundle(source, { ...bad, signingKey: keys.signing.publicKey })).rejects.toMatchObject({
      code: BundleErrorCode.InvalidKey,
    });
    await expect(bundle(source, { ...bad, compression: 'zstd', level: 22 })).rejects.toMatchObject({
      code: BundleErrorCode.InvalidParameter,
    });
    expect(read).toBe(false);
  });

  it('refuses a stream of strings', async () => {
    await expect(
      bundle(Readable.from(['text']), bundleOptions(keys, new MemoryStore())),
    ).rejects.toMatchObject({ code: BundleErrorCode.InvalidParameter });
  });

  it('hands parts to the sink in order, a bounded number at a time, named after the image', async () => {
    const started: number[] = [];
    let running = 0;
    let most = 0;
    const onPart = async (part: BundlePart) => {
      started.push(part.index);
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, 2));
      running--;
    };
    let progress = 0;
    const result = await bundle(
      imageStream(600 * KiB),
      bundleOptions(keys, new MemoryStore(), {
        onPart,
        partSize: 16 * KiB,
        blockSize: 16 * KiB,
        partConcurrency: 3,
        onProgress: (n) => (progress = n),
      }),
    );
    expect(started).toEqual(result.parts.map((p) => p.index));
    expect(most).toBe(3);
    expect(progress).toBe(600 * KiB);
    expect(result.parts[0].filename).toBe('Ubuntu-24.04-LTS-test.part.0000');
  });

  it('fails with the sink error, and no sink call is still running when it does', async () => {
    let running = 0;
    let calls = 0;
    const onPart = async (part: BundlePart) => {
      calls++;
      running++;
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      if (part.index === 2) throw new Error('upload failed');
    };
    await expect(
      bundle(
        imageStream(2048 * KiB),
        bundleOptions(keys, new MemoryStore(), { onPart, partSize: 16 * KiB, blockSize: 16 * KiB }),
      ),
    ).rejects.toThrow('upload failed');
    expect(running).toBe(0);
    expect(calls).toBeLessThan(8);
  });

  it('fails with the source error', async () => {
    const source = new Readable({ read() {} });
    source.push(Buffer.alloc(1000));
    setImmediate(() => source.destroy(new Error('connection reset')));
    await expect(bundle(source, bundleOptions(keys, new MemoryStore()))).rejects.toThrow('connection reset');
  });

  it('derives safe part names from any image name', () => {
    expect(defaultPartPrefix('My image / v2 (beta)')).toBe('My-image-v2-beta');
    expect(defaultPartPrefix('../..')).toBe('image');
  });
});
