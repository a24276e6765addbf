import { Buffer } from 'node:buffer';
import { Readable, Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { rawZstdFrame } from './block.codec.js';
import { BundleErrorCode, BundleFormatError } from './bundle-format.exception.js';
import { unbundle, type UnbundleOptions } from './bundle.reader.js';
import {
  MemoryStore,
  bundleOptions,
  craftBundle,
  imageBytes,
  imageStream,
  sha256,
} from './bundle.fixture.js';
import { bundle, type BundleResult } from './bundle.writer.js';
import { generatePlatformKeys, type PlatformKeys } from './keys.crypto.js';

const KiB = 1024;
const SIZE = 700 * KiB;

describe('unbundle refuses every tampered bundle with the right code', () => {
  let keys: PlatformKeys;
  let other: PlatformKeys;
  let result: BundleResult;
  let store: MemoryStore;

  beforeAll(async () => {
    [keys, other] = await Promise.all([generatePlatformKeys(), generatePlatformKeys()]);
    store = new MemoryStore();
    // Small parts and blocks: a multi-part bundle in a few milliseconds.
    result = await bundle(
      imageStream(SIZE),
      bundleOptions(keys, store, { partSize: 64 * KiB, blockSize: 32 * KiB }),
    );
    expect(result.parts.length).toBeGreaterThan(4);
  });

  /** A copy of the good store with `change` applied to it. */
  function tampered(change: (parts: Map<string, Buffer>) => void): MemoryStore {
    const copy = new MemoryStore();
    for (const [name, data] of store.parts) copy.parts.set(name, Buffer.from(data));
    change(copy.parts);
    return copy;
  }

  function verify(xml: string, from: MemoryStore = store, overrides: Partial<UnbundleOptions> = {}) {
    return unbundle(xml, {
      readPart: from.read,
      privateKey: keys.wrapping.privateKey,
      signerPublicKey: keys.signing.publicKey,
      ...overrides,
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

  const name = (i: number) => result.parts[i].filename;

  it('accepts the untouched bundle', async () => {
    await expect(verify(result.manifestXml)).resolves.toMatchObject({
      digest: sha256(imageBytes(SIZE)),
      size: SIZE,
    });
  });

  it('a flipped bit in a part: DigestMismatch, naming the part', async () => {
    const error = await failure(
      verify(
        result.manifestXml,
        tampered((parts) => (parts.get(name(2))![100] ^= 0x01)),
      ),
    );
    expect(error.code).toBe(BundleErrorCode.DigestMismatch);
    expect(error.partIndex).toBe(2);
    expect(error.message).toContain(name(2));
  });

  it('a flipped bit in a part of a gzip bundle: DigestMismatch', async () => {
    const gzipStore = new MemoryStore();
    const gz = await bundle(
      imageStream(SIZE),
      bundleOptions(keys, gzipStore, { compression: 'gzip', partSize: 64 * KiB, blockSize: 32 * KiB }),
    );
    await expect(verify(gz.manifestXml, gzipStore)).resolves.toMatchObject({ size: SIZE });
    const part = gzipStore.parts.get(gz.parts[1].filename)!;
    part[5] ^= 0x80;
    const error = await failure(verify(gz.manifestXml, gzipStore));
    expect(error.code).toBe(BundleErrorCode.DigestMismatch);
    expect(error.partIndex).toBe(1);
  });

  it('two parts swapped in storage: DigestMismatch', async () => {
    const swapped = tampered((parts) => {
      const [a, b] = [parts.get(name(1))!, parts.get(name(2))!];
      parts.set(name(1), b);
      parts.set(name(2), a);
    });
    expect((await failure(verify(result.manifestXml, swapped))).code).toBe(BundleErrorCode.DigestMismatch);
  });

  it('a missing part: PartMissing, with the reader error as cause', async () => {
    const error = await failure(
      verify(
        result.manifestXml,
        tampered((parts) => parts.delete(name(3))),
      ),
    );
    expect(error.code).toBe(BundleErrorCode.PartMissing);
    expect(error.partIndex).toBe(3);
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('a truncated part, or a longer one: PartSizeMismatch', async () => {
    const truncated = tampered((parts) => parts.set(name(1), parts.get(name(1))!.subarray(0, 1000)));
    expect((await failure(verify(result.manifestXml, truncated))).code).toBe(
      BundleErrorCode.PartSizeMismatch,
    );
    const longer = tampered((parts) =>
      parts.set(name(1), Buffer.concat([parts.get(name(1))!, Buffer.from('x')])),
    );
    expect((await failure(verify(result.manifestXml, longer))).code).toBe(BundleErrorCode.PartSizeMismatch);
  });

  it('a truncated part read as a stream: PartSizeMismatch', async () => {
    const readPart: UnbundleOptions['readPart'] = async (part) => {
      const data = await store.read(part);
      return Readable.from(
        part.index === 2 ? [data.subarray(0, 5000)] : [data.subarray(0, 7), data.subarray(7)],
      );
    };
    expect((await failure(verify(result.manifestXml, store, { readPart }))).code).toBe(
      BundleErrorCode.PartSizeMismatch,
    );
  });

  it('a changed manifest field: SignatureInvalid', async () => {
    const xml = result.manifestXml.replace(
      '<architecture>x86_64</architecture>',
      '<architecture>arm64</architecture>',
    );
    expect(xml).not.toBe(result.manifestXml);
    expect((await failure(verify(xml))).code).toBe(BundleErrorCode.SignatureInvalid);
  });

  it('a changed part digest in the manifest: SignatureInvalid', async () => {
    const digest = result.parts[1].digest;
    const xml = result.manifestXml.replace(digest, sha256(Buffer.from('forged')));
    expect((await failure(verify(xml))).code).toBe(BundleErrorCode.SignatureInvalid);
  });

  it('reordered part entries in the manifest: SignatureInvalid', async () => {
    const [a, b] = [result.parts[1], result.parts[2]];
    const xml = result.manifestXml
      .replace(`<filename>${a.filename}</filename>`, '<filename>SWAP</filename>')
      .replace(`<filename>${b.filename}</filename>`, `<filename>${a.filename}</filename>`)
      .replace('<filename>SWAP</filename>', `<filename>${b.filename}</filename>`)
      .replace(a.digest, 'SWAP')
      .replace(b.digest, a.digest)
      .replace('SWAP', b.digest);
    expect((await failure(verify(xml))).code).toBe(BundleErrorCode.SignatureInvalid);
  });

  it('an extra part in the manifest: SignatureInvalid (or malformed if the count disagrees)', async () => {
    const n = result.parts.length;
    const extra = `<part index="${n}"><filename>extra.part.${n}</filename><digest algorithm="SHA256">${sha256(Buffer.from('x'))}</digest></part></parts>`;
    const bytes = result.parts.reduce((s, p) => s + p.size, 0);
    const consistent = result.manifestXml
      .replace('</parts>', extra)
      .replace(`<parts count="${n}">`, `<parts count="${n + 1}">`)
      .replace(`<bundled_size>${bytes}</bundled_size>`, `<bundled_size>${n * 64 * KiB + 100}</bundled_size>`);
    expect((await failure(verify(consistent))).code).toBe(BundleErrorCode.SignatureInvalid);
    expect((await failure(verify(result.manifestXml.replace('</parts>', extra)))).code).toBe(
      BundleErrorCode.ManifestMalformed,
    );
  });

  it('a manifest signed by another key: SignatureInvalid, naming the keys', async () => {
    const error = await failure(
      verify(result.manifestXml, store, { signerPublicKey: other.signing.publicKey }),
    );
    expect(error.code).toBe(BundleErrorCode.SignatureInvalid);
    expect(error.message).toMatch(/signed by key sha256:[0-9a-f]{64}, not by the expected key/);
  });

  it('the wrong platform private key: KeyUnwrapFailed', async () => {
    const error = await failure(verify(result.manifestXml, store, { privateKey: other.wrapping.privateKey }));
    expect(error.code).toBe(BundleErrorCode.KeyUnwrapFailed);
  });

  it('a DOCTYPE with entities: ManifestMalformed; an oversized manifest: ManifestTooLarge', async () => {
    const laughs = result.manifestXml.replace(
      '<manifest>',
      '<!DOCTYPE manifest [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n<manifest>',
    );
    expect((await failure(verify(laughs))).code).toBe(BundleErrorCode.ManifestMalformed);
    const huge = result.manifestXml.replace('<manifest>', `<manifest><!--${'x'.repeat(5 * 1024 * 1024)}-->`);
    expect((await failure(verify(huge))).code).toBe(BundleErrorCode.ManifestTooLarge);
  });

  describe('bundles signed by a registered but malicious seller', () => {
    const image = Buffer.from('the real image\n'.repeat(2000)); // two blocks of 16 KiB
    const honest = {
      algorithm: 'zstd' as const,
      blockSize: 16 * KiB,
      partSize: 4 * KiB,
      imageSize: image.length,
      imageDigest: sha256(image),
    };
    const zstdStream = () =>
      Buffer.concat([0, 1].map((i) => rawZstdFrame(image.subarray(i * 16 * KiB, (i + 1) * 16 * KiB))));

    it('a crafted bundle that is honest passes', async () => {
      const { xml, store: crafted } = craftBundle(keys, { ...honest, compressed: zstdStream() });
      await expect(verify(xml, crafted)).resolves.toMatchObject({ digest: sha256(image) });
    });

    it('an image digest that does not match the content: ImageDigestMismatch', async () => {
      const { xml, store: crafted } = craftBundle(keys, {
        ...honest,
        compressed: zstdStream(),
        imageDigest: sha256(Buffer.from('other')),
      });
      expect((await failure(verify(xml, crafted))).code).toBe(BundleErrorCode.ImageDigestMismatch);
    });

    it('a declared size that does not match: ImageSizeMismatch', async () => {
      const { xml, store: crafted } = craftBundle(keys, {
        ...honest,
        compressed: zstdStream(),
        imageSize: image.length + 1,
      });
      expect((await failure(verify(xml, crafted))).code).toBe(BundleErrorCode.ImageSizeMismatch);
    });

    it('parts sealed out of order (listed with matching digests): DecryptionFailed', async () => {
      const sealAs = (i: number, count: number) => ({
        index: i === 0 ? 1 : i === 1 ? 0 : i,
        last: i === count - 1,
      });
      const { xml, store: crafted } = craftBundle(keys, { ...honest, compressed: zstdStream(), sealAs });
      const error = await failure(verify(xml, crafted));
      expect(error.code).toBe(BundleErrorCode.DecryptionFailed);
      expect(error.partIndex).toBe(0);
    });

    it('trailing parts dropped (the new last part was not sealed as last): DecryptionFailed', async () => {
      const sealAs = (i: number) => ({ index: i, last: false });
      const { xml, store: crafted } = craftBundle(keys, { ...honest, compressed: zstdStream(), sealAs });
      expect((await failure(verify(xml, crafted))).code).toBe(BundleErrorCode.DecryptionFailed);
    });

    it('a zstd frame that could expand far beyond the block size: DecompressionFailed before decoding it', async () => {
      const bomb = rawZstdFrame(Buffer.alloc(512 * KiB)); // fine as zstd, 32x the declared block size
      const { xml, store: crafted } = craftBundle(keys, { ...honest, compressed: bomb });
      const error = await failure(verify(xml, crafted));
      expect(error.code).toBe(BundleErrorCode.DecompressionFailed);
      expect(error.message).toContain('could decode to more than');
    });

    it('a gzip stream that expands beyond the declared size: ImageSizeMismatch as soon as it passes it', async () => {
      const bomb = gzipSync(Buffer.alloc(16 * 1024 * 1024)); // 16 MiB of zeros in 16 KiB
      const { xml, store: crafted } = craftBundle(keys, {
        ...honest,
        algorithm: 'gzip',
        partSize: 16 * KiB,
        compressed: bomb,
      });
      let produced = 0;
      const error = await failure(verify(xml, crafted, { onProgress: (n) => (produced = n) }));
      expect(error.code).toBe(BundleErrorCode.ImageSizeMismatch);
      expect(produced).toBeLessThanOrEqual(image.length);
    });

    it('garbage instead of compressed data: DecompressionFailed', async () => {
      for (const algorithm of ['zstd', 'gzip'] as const) {
        const { xml, store: crafted } = craftBundle(keys, {
          ...honest,
          algorithm,
          compressed: Buffer.from('not compressed at all'),
        });
        expect((await failure(verify(xml, crafted))).code).toBe(BundleErrorCode.DecompressionFailed);
      }
    });

    it('a zstd stream cut inside a frame: DecompressionFailed', async () => {
      const { xml, store: crafted } = craftBundle(keys, {
        ...honest,
        compressed: zstdStream().subarray(0, 20_000),
      });
      expect((await failure(verify(xml, crafted))).code).toBe(BundleErrorCode.DecompressionFailed);
    });
  });

  it('an output that fails: OutputFailed, with its error as cause', async () => {
    const output = new Writable({ write: (_chunk, _encoding, done) => done(new Error('disk full')) });
    const error = await failure(verify(result.manifestXml, store, { output }));
    expect(error.code).toBe(BundleErrorCode.OutputFailed);
    expect(error.message).toContain('disk full');
  });

  it('an abort stops it with the abort reason', async () => {
    const controller = new AbortController();
    controller.abort(new Error('shutting down'));
    await expect(verify(result.manifestXml, store, { signal: controller.signal })).rejects.toThrow(
      'shutting down',
    );
  });
});
