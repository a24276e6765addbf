import { Buffer } from 'node:buffer';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { partFilename, type BundleOptions, type BundlePart } from './bundle.writer.js';
import { keyFingerprint, wrapDataKey, type PlatformKeys } from './keys.crypto.js';
import { signManifest } from './manifest.signature.js';
import type { UnsignedManifest } from './manifest.types.js';
import { buildManifest } from './manifest.xml.js';
import { sealPart } from './part.cipher.js';

/** Test support: deterministic images and an in-memory part store. Not exported from the library. */

const TEXT = Buffer.from(
  Array.from(
    { length: 2048 },
    (_, i) =>
      `-rw-r--r-- root root ${(i * 7919) % 100000} /usr/lib/x86_64-linux-gnu/lib${i % 97}.so.${i % 7}\n`,
  ).join(''),
);

/**
 * `size` bytes of image, in chunks of `chunkSize`: per MiB, the first half is pseudo-random
 * (AES-CTR keystream) and the second half filesystem-like text, so it compresses about 2:1.
 * The first n bytes do not depend on `size`. `random: true` gives only keystream (incompressible).
 */
export function imageChunks(
  size: number,
  options: { seed?: number; chunkSize?: number; random?: boolean } = {},
): Generator<Buffer> {
  const chunkSize = options.chunkSize ?? 1024 * 1024;
  const key = createHash('sha256')
    .update(`image-${options.seed ?? 1}`)
    .digest()
    .subarray(0, 16);
  const keystream = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(chunkSize);
  return (function* () {
    for (let offset = 0; offset < size; offset += chunkSize) {
      const n = Math.min(chunkSize, size - offset);
      const chunk = keystream.update(zeros.subarray(0, n));
      if (!options.random) {
        for (let at = 0; at < n; at++) {
          const pos = offset + at;
          const inMiB = pos % (1024 * 1024);
          if (inMiB >= 512 * 1024) {
            const start = (pos + Math.floor(pos / (1024 * 1024)) * 7919) % TEXT.length; // a function of pos only
            const run = Math.min(n - at, 1024 * 1024 - inMiB, TEXT.length - start);
            TEXT.copy(chunk, at, start, start + run);
            at += run - 1;
          }
        }
      }
      yield chunk;
    }
  })();
}

export function imageStream(
  size: number,
  options: { seed?: number; chunkSize?: number; random?: boolean } = {},
): Readable {
  return Readable.from(imageChunks(size, options), { objectMode: false, highWaterMark: 1 });
}

export function imageBytes(size: number, options: { seed?: number; random?: boolean } = {}): Buffer {
  return Buffer.concat([...imageChunks(size, options)]);
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Parts stored by filename, as an object store would. */
export class MemoryStore {
  readonly parts = new Map<string, Buffer>();

  readonly sink = async (part: BundlePart): Promise<void> => {
    await Promise.resolve();
    this.parts.set(part.filename, part.data);
  };

  readonly read = async (part: { filename: string }): Promise<Buffer> => {
    await Promise.resolve();
    const data = this.parts.get(part.filename);
    if (!data) throw new Error(`no such object: ${part.filename}`);
    return data;
  };
}

export function bundleOptions(
  keys: PlatformKeys,
  store: MemoryStore,
  overrides: Partial<BundleOptions> = {},
): BundleOptions {
  return {
    image: {
      name: 'Ubuntu 24.04 LTS (test)',
      version: '1.0.0',
      description: 'A test image',
      user: '123456789012',
    },
    machineConfiguration: {
      architecture: 'x86_64',
      virtualizationType: 'hvm',
      kernelId: 'aki-0123abcd',
      blockDeviceMapping: [
        { virtual: 'ami', device: 'sda1' },
        { virtual: 'root', device: '/dev/sda1' },
      ],
      productCodes: ['abcd1234'],
    },
    platformPublicKey: keys.wrapping.publicKey,
    signingKey: keys.signing.privateKey,
    onPart: store.sink,
    ...overrides,
  };
}

export interface CraftedBundle {
  /** The plaintext compressed stream to seal (any bytes: this is how an attacker makes one). */
  compressed: Buffer;
  algorithm: 'zstd' | 'gzip';
  blockSize: number;
  partSize: number;
  imageSize: number;
  imageDigest: string;
  /** Seal with these part indexes / last flags instead of the honest ones (to forge reorderings). */
  sealAs?: (index: number, count: number) => { index: number; last: boolean };
}

/**
 * A bundle made by hand and signed with `keys.signing`: what a malicious (but registered)
 * seller could upload. The verify job must still refuse it if it does not hold its image.
 */
export function craftBundle(keys: PlatformKeys, crafted: CraftedBundle): { xml: string; store: MemoryStore } {
  const dataKey = randomBytes(32);
  const salt = randomBytes(4);
  const plain = crafted.partSize - 16;
  const count = Math.max(1, Math.ceil(crafted.compressed.length / plain));
  const store = new MemoryStore();
  const parts = Array.from({ length: count }, (_, i) => {
    const as = crafted.sealAs?.(i, count) ?? { index: i, last: i === count - 1 };
    const data = sealPart(
      dataKey,
      salt,
      as.index,
      as.last,
      crafted.compressed.subarray(i * plain, (i + 1) * plain),
    );
    const part = { index: i, filename: partFilename('crafted', i), digest: sha256(data), size: data.length };
    store.parts.set(part.filename, data);
    return part;
  });
  const unsigned: UnsignedManifest = {
    formatVersion: 1,
    bundler: { name: 'crafted', version: '0' },
    machineConfiguration: { architecture: 'x86_64', blockDeviceMapping: [], productCodes: [] },
    image: {
      name: 'crafted',
      user: '123456789012',
      type: 'machine',
      size: crafted.imageSize,
      digest: crafted.imageDigest,
      bundledSize: parts.reduce((n, p) => n + p.size, 0),
    },
    compression: { algorithm: crafted.algorithm, blockSize: crafted.blockSize },
    encryption: {
      algorithm: 'AES-256-GCM',
      partSize: crafted.partSize,
      nonceScheme: 'salt32-index64be',
      salt: salt.toString('hex'),
      keyWrapping: {
        algorithm: 'RSA-OAEP-SHA256',
        keyId: keyFingerprint(keys.wrapping.publicKey),
        wrappedKey: wrapDataKey(dataKey, keys.wrapping.publicKey),
      },
    },
    parts,
  };
  return { xml: buildManifest(signManifest(unsigned, keys.signing.privateKey)), store };
}
