import { Buffer } from 'node:buffer';
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import type { Readable } from 'node:stream';
import { compressBlock, levelRange } from './block.codec.js';
import {
  BUNDLER,
  CIPHER_ALGORITHM,
  DATA_KEY_BYTES,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_COMPRESSION_WINDOW,
  DEFAULT_PART_SIZE,
  FORMAT_VERSION,
  GCM_TAG_BYTES,
  KEY_WRAPPING_ALGORITHM,
  LIMITS,
  NONCE_SCHEME,
  SALT_BYTES,
} from './bundle-format.constants.js';
import { BundleErrorCode, BundleFormatError } from './bundle-format.exception.js';
import { assertWrappingKey, keyFingerprint, signatureAlgorithmOf, wrapDataKey } from './keys.crypto.js';
import {
  FieldCheck,
  checkImageDescription,
  checkMachineConfiguration,
  checkPartFilename,
} from './manifest.schema.js';
import { signManifest } from './manifest.signature.js';
import type {
  CompressionAlgorithm,
  ImageDescription,
  MachineConfiguration,
  Manifest,
  ManifestPart,
  UnsignedManifest,
} from './manifest.types.js';
import { buildManifest } from './manifest.xml.js';
import { sealPart } from './part.cipher.js';

/** A sealed part, handed to the caller to store under a key of its choosing. */
export interface BundlePart extends ManifestPart {
  data: Buffer;
}

/** Stores one part. bundle() waits for it, so a slow sink slows bundling instead of filling memory. */
export type PartSink = (part: BundlePart) => Promise<void>;

export interface BundleOptions {
  image: Omit<ImageDescription, 'type'> & { type?: ImageDescription['type'] };
  machineConfiguration: Omit<MachineConfiguration, 'blockDeviceMapping' | 'productCodes'> &
    Partial<Pick<MachineConfiguration, 'blockDeviceMapping' | 'productCodes'>>;
  /** The platform's RSA public key: the data key is wrapped for it. */
  platformPublicKey: KeyObject;
  /**
   * The image owner's own RSA public key (a seller bundling on his machine): the data key is
   * wrapped for it too (`owner_wrapped_key`), so the owner can decrypt and fully verify the bundle.
   */
  ownerPublicKey?: KeyObject;
  /** Ed25519 or RSA private key that signs the manifest (the platform's, or a seller's). */
  signingKey: KeyObject;
  onPart: PartSink;
  /** zstd (default) or gzip. */
  compression?: CompressionAlgorithm;
  /** zstd 1-19 (default 3), gzip 1-9 (default 1). */
  level?: number;
  /** Part file names are `<partPrefix>.part.<NNNN>`; default: the image name with unsafe characters replaced. */
  partPrefix?: string;
  /** Blocks compressing at once (default: cores, 2 to 4); each holds a block of input and its output. */
  concurrency?: number;
  /** Sink calls in flight at once (default 2), started in part order. */
  partConcurrency?: number;
  /** Format parameters; leave them at their defaults (4 MiB, 10 MiB) outside tests. */
  blockSize?: number;
  partSize?: number;
  signal?: AbortSignal;
  /** Called after each block of input is read, with the input bytes read so far. */
  onProgress?: (bytesRead: number) => void;
  /** Fixed secrets for test vectors only: never set them in production. */
  testing?: { dataKey?: Buffer; salt?: Buffer };
}

export interface BundleResult {
  manifest: Manifest;
  manifestXml: string;
  /** SHA-256 of the original image, lowercase hex. */
  imageDigest: string;
  imageSize: number;
  bundledSize: number;
  parts: ManifestPart[];
}

function invalid(message: string): BundleFormatError {
  return new BundleFormatError(BundleErrorCode.InvalidParameter, message);
}

function intOption(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < min || v > max)
    throw invalid(`${name} must be an integer from ${min} to ${max}`);
  return v;
}

export function defaultPartPrefix(name: string): string {
  const prefix = name
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[.-]+|[.-]+$/g, '')
    .slice(0, 100);
  return prefix || 'image';
}

export function partFilename(prefix: string, index: number): string {
  return `${prefix}.part.${String(index).padStart(4, '0')}`;
}

/** Fills parts of `partSize - 16` plaintext bytes, seals each and hands it to the sink. */
class PartWriter {
  readonly parts: ManifestPart[] = [];
  bundledSize = 0;
  private readonly buffer: Buffer;
  private fill = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(
    private readonly key: Buffer,
    private readonly salt: Buffer,
    private readonly prefix: string,
    private readonly sink: PartSink,
    private readonly sinkConcurrency: number,
    partSize: number,
  ) {
    this.buffer = Buffer.allocUnsafe(partSize - GCM_TAG_BYTES);
  }

  async write(data: Buffer): Promise<void> {
    let at = 0;
    while (at < data.length) {
      // A full part is sealed only once more data arrives: only then is it known not to be the last.
      if (this.fill === this.buffer.length) await this.seal(false);
      const n = Math.min(this.buffer.length - this.fill, data.length - at);
      data.copy(this.buffer, this.fill, at, at + n);
      this.fill += n;
      at += n;
    }
  }

  async end(): Promise<void> {
    await this.seal(true);
    await this.settle();
    this.throwIfFailed();
  }

  /** Waits for every sink call in flight; never throws. */
  async settle(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }

  private async seal(last: boolean): Promise<void> {
    const index = this.parts.length;
    const data = sealPart(this.key, this.salt, index, last, this.buffer.subarray(0, this.fill));
    this.fill = 0;
    const part: ManifestPart = {
      index,
      filename: partFilename(this.prefix, index),
      digest: createHash('sha256').update(data).digest('hex'),
      size: data.length,
    };
    this.parts.push(part);
    this.bundledSize += data.length;
    while (this.inFlight.size >= this.sinkConcurrency) await Promise.race(this.inFlight);
    this.throwIfFailed();
    const call: Promise<void> = this.sink({ ...part, data }).then(
      () => void this.inFlight.delete(call),
      (error: unknown) => {
        this.inFlight.delete(call);
        this.failure ??= { error };
      },
    );
    this.inFlight.add(call);
  }
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw invalid('the image stream must yield bytes (Buffer or Uint8Array); do not set an encoding on it');
}

/**
 * Bundles a raw image: compresses it in independent blocks (several at once, output in order),
 * seals it in parts under a fresh AES-256-GCM data key, hands each part to `onPart`, and
 * returns the signed manifest. Memory stays bounded whatever the image size: about
 * `concurrency` x 2 blocks + (1 + `partConcurrency`) parts.
 */
export async function bundle(
  source: Readable | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: BundleOptions,
): Promise<BundleResult> {
  const compression = options.compression ?? 'zstd';
  if (compression !== 'zstd' && compression !== 'gzip')
    throw invalid(`compression must be zstd or gzip (got ${String(compression)})`);
  const range = levelRange(compression);
  const level = intOption('level', options.level, range.default, range.min, range.max);
  const blockSize = intOption(
    'blockSize',
    options.blockSize,
    DEFAULT_BLOCK_SIZE,
    LIMITS.minBlockSize,
    LIMITS.maxBlockSize,
  );
  const partSize = intOption(
    'partSize',
    options.partSize,
    DEFAULT_PART_SIZE,
    LIMITS.minPartSize,
    LIMITS.maxPartSize,
  );
  const concurrency = intOption('concurrency', options.concurrency, DEFAULT_COMPRESSION_WINDOW, 1, 64);
  const partConcurrency = intOption('partConcurrency', options.partConcurrency, 2, 1, 64);

  // Fail on bad metadata or keys before reading a byte of the image.
  const check = new FieldCheck(BundleErrorCode.InvalidParameter);
  const image: ImageDescription = { ...options.image, type: options.image.type ?? 'machine' };
  const machineConfiguration: MachineConfiguration = {
    ...options.machineConfiguration,
    blockDeviceMapping: options.machineConfiguration.blockDeviceMapping ?? [],
    productCodes: options.machineConfiguration.productCodes ?? [],
  };
  checkImageDescription(check, image);
  checkMachineConfiguration(check, machineConfiguration);
  const prefix = options.partPrefix ?? defaultPartPrefix(image.name);
  checkPartFilename(check, 'partPrefix', partFilename(prefix, 0));
  assertWrappingKey(options.platformPublicKey);
  if (options.ownerPublicKey) assertWrappingKey(options.ownerPublicKey);
  signatureAlgorithmOf(options.signingKey);
  if (options.signingKey.type !== 'private')
    throw new BundleFormatError(BundleErrorCode.InvalidKey, 'signingKey must be a private key');

  const dataKey = options.testing?.dataKey ?? randomBytes(DATA_KEY_BYTES);
  const salt = options.testing?.salt ?? randomBytes(SALT_BYTES);
  if (dataKey.length !== DATA_KEY_BYTES || salt.length !== SALT_BYTES)
    throw invalid(`dataKey must be ${DATA_KEY_BYTES} bytes and salt ${SALT_BYTES}`);

  const parts = new PartWriter(dataKey, salt, prefix, options.onPart, partConcurrency, partSize);
  const imageHash = createHash('sha256');
  let imageSize = 0;
  // Compressions in flight, oldest first; their output is written in this order.
  const window: Promise<Buffer>[] = [];
  // Block buffers come back here once compressed: fewer large allocations, a steadier RSS.
  const freeBlocks: Buffer[] = [];
  const submit = async (block: Buffer, pooled: boolean) => {
    const compressed = compressBlock(compression, level, block, blockSize).finally(
      () => pooled && freeBlocks.push(block),
    );
    compressed.catch(() => undefined); // awaited below, or abandoned on failure
    window.push(compressed);
    if (window.length >= concurrency) await parts.write(await window.shift()!);
  };

  try {
    let block: Buffer = Buffer.allocUnsafe(blockSize);
    let fill = 0;
    for await (const chunk of source as AsyncIterable<unknown>) {
      options.signal?.throwIfAborted();
      const data = toBuffer(chunk);
      imageHash.update(data);
      imageSize += data.length;
      let at = 0;
      while (at < data.length) {
        if (fill === 0 && data.length - at >= blockSize) {
          await submit(data.subarray(at, at + blockSize), false); // a whole block in the chunk: no copy
          at += blockSize;
          continue;
        }
        const n = Math.min(blockSize - fill, data.length - at);
        data.copy(block, fill, at, at + n);
        fill += n;
        at += n;
        if (fill === blockSize) {
          await submit(block, true);
          block = freeBlocks.pop() ?? Buffer.allocUnsafe(blockSize);
          fill = 0;
        }
      }
      options.onProgress?.(imageSize);
    }
    // An empty image still gets one (empty) frame, so the stream is valid for standard tools.
    if (fill > 0 || imageSize === 0) await submit(block.subarray(0, fill), false);
    while (window.length) await parts.write(await window.shift()!);
    await parts.end();
  } catch (error) {
    await parts.settle(); // no upload keeps running after bundle() has failed
    throw error;
  }

  const unsigned: UnsignedManifest = {
    formatVersion: FORMAT_VERSION,
    bundler: { ...BUNDLER },
    machineConfiguration,
    image: { ...image, digest: imageHash.digest('hex'), size: imageSize, bundledSize: parts.bundledSize },
    compression: { algorithm: compression, blockSize },
    encryption: {
      algorithm: CIPHER_ALGORITHM,
      partSize,
      nonceScheme: NONCE_SCHEME,
      salt: salt.toString('hex'),
      keyWrapping: {
        algorithm: KEY_WRAPPING_ALGORITHM,
        keyId: keyFingerprint(options.platformPublicKey),
        wrappedKey: wrapDataKey(dataKey, options.platformPublicKey),
      },
      ...(options.ownerPublicKey
        ? {
            ownerKeyWrapping: {
              algorithm: KEY_WRAPPING_ALGORITHM,
              keyId: keyFingerprint(options.ownerPublicKey),
              wrappedKey: wrapDataKey(dataKey, options.ownerPublicKey),
            },
          }
        : {}),
    },
    parts: parts.parts,
  };
  const manifest = signManifest(unsigned, options.signingKey);
  return {
    manifest,
    manifestXml: buildManifest(manifest),
    imageDigest: manifest.image.digest,
    imageSize,
    bundledSize: parts.bundledSize,
    parts: parts.parts,
  };
}
