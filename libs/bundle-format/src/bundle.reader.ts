import { Buffer } from 'node:buffer';
import { createHash, type KeyObject } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import {
  decompressZstdFrame,
  joinedView,
  maxFrameDecodedBound,
  scanZstdFrame,
  type ByteView,
} from './block.codec.js';
import { DEFAULT_COMPRESSION_WINDOW } from './bundle-format.constants.js';
import { BundleErrorCode, BundleFormatError, describeError } from './bundle-format.exception.js';
import { unwrapBundleDataKey } from './keys.crypto.js';
import { verifyManifestSignature } from './manifest.signature.js';
import type { Manifest, ManifestPart } from './manifest.types.js';
import { parseManifest } from './manifest.xml.js';
import { openPart } from './part.cipher.js';

export type PartSource = Readable | AsyncIterable<Uint8Array> | Uint8Array;

export interface UnbundleOptions {
  /** Fetches one part as stored (a stream or bytes). `signal` aborts when unbundle() gives up. */
  readPart: (part: ManifestPart, context: { signal: AbortSignal }) => PartSource | Promise<PartSource>;
  /**
   * An RSA private key the data key is wrapped for: the platform's (`wrapped_key`), or the image
   * owner's (`owner_wrapped_key`, in a bundle a seller made).
   */
  privateKey: KeyObject;
  /** The key the manifest must be signed with: the platform's, or the seller's registered key. */
  signerPublicKey: KeyObject;
  /**
   * Receives the original image. It sees bytes before the whole image is proven, so treat what
   * it wrote as untrusted until unbundle() resolves; on failure it is destroyed with the error.
   */
  output?: Writable;
  /** Parts fetched ahead, at most (default 2). */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called with the image bytes produced so far. */
  onProgress?: (bytesWritten: number) => void;
}

export interface UnbundleResult {
  manifest: Manifest;
  /** SHA-256 of the original image, lowercase hex: equal to the manifest's. */
  digest: string;
  size: number;
}

/** The part's bytes, and whether they are ours (copied from a stream) or the caller's. */
async function collectPart(
  source: PartSource,
  part: ManifestPart,
): Promise<{ data: Buffer; owned: boolean }> {
  const wrongSize = (actual: string) =>
    new BundleFormatError(
      BundleErrorCode.PartSizeMismatch,
      `part ${part.index} (${part.filename}) is ${actual} bytes, not ${part.size}: it is truncated or was replaced`,
      {
        partIndex: part.index,
      },
    );
  if (source instanceof Uint8Array) {
    if (source.length !== part.size) throw wrongSize(String(source.length));
    return { data: Buffer.from(source.buffer, source.byteOffset, source.byteLength), owned: false };
  }
  const data = Buffer.allocUnsafe(part.size);
  let fill = 0;
  for await (const chunk of source) {
    if (!(chunk instanceof Uint8Array)) throw new TypeError('a part stream must yield bytes, not strings');
    const bytes = chunk;
    if (fill + bytes.length > part.size) throw wrongSize('more than'); // leaving the loop destroys the stream
    data.set(bytes, fill);
    fill += bytes.length;
  }
  if (fill !== part.size) throw wrongSize(String(fill));
  return { data, owned: true };
}

async function fetchPart(
  m: Manifest,
  part: ManifestPart,
  key: Buffer,
  salt: Buffer,
  options: UnbundleOptions,
  signal: AbortSignal,
): Promise<Buffer> {
  let sealed: { data: Buffer; owned: boolean };
  try {
    sealed = await collectPart(await options.readPart(part, { signal }), part);
  } catch (error) {
    if (error instanceof BundleFormatError) throw error;
    signal.throwIfAborted();
    throw new BundleFormatError(
      BundleErrorCode.PartMissing,
      `part ${part.index} (${part.filename}) cannot be read: ${describeError(error)}`,
      {
        cause: error,
        partIndex: part.index,
      },
    );
  }
  const digest = createHash('sha256').update(sealed.data).digest('hex');
  if (digest !== part.digest) {
    throw new BundleFormatError(
      BundleErrorCode.DigestMismatch,
      `part ${part.index} (${part.filename}) has SHA-256 ${digest}, but the manifest says ${part.digest}: the part was changed, corrupted or swapped`,
      { partIndex: part.index },
    );
  }
  // Decrypting in place saves a part-sized buffer, but never in a buffer the caller gave us.
  return openPart(key, salt, part.index, part.index === m.parts.length - 1, sealed.data, {
    inPlace: sealed.owned,
  });
}

/** Plaintext of every part in order, with up to `concurrency` parts fetched and opened ahead. */
async function* plaintexts(m: Manifest, key: Buffer, options: UnbundleOptions): AsyncGenerator<Buffer> {
  const salt = Buffer.from(m.encryption.salt, 'hex');
  const concurrency = Math.max(1, options.concurrency ?? 2);
  const controller = new AbortController();
  const stop = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', stop, { once: true });
  const ahead: Promise<Buffer>[] = [];
  let next = 0;
  const start = () => {
    const fetching = fetchPart(m, m.parts[next++], key, salt, options, controller.signal);
    fetching.catch(() => undefined); // awaited below, or abandoned when we stop early
    ahead.push(fetching);
  };
  try {
    while (next < m.parts.length && ahead.length < concurrency) start();
    while (ahead.length) {
      options.signal?.throwIfAborted();
      const plaintext = await ahead.shift()!;
      if (next < m.parts.length) start();
      yield plaintext;
    }
  } finally {
    options.signal?.removeEventListener('abort', stop);
    controller.abort(); // tell readers still running that nobody needs their part
  }
}

/**
 * Splits the plaintext into zstd frames, checks each frame's bound before buffering it, and
 * decompresses a few at once. Frames inside one part are views of it; only a frame that
 * straddles two parts is copied.
 */
async function* zstdDecode(input: AsyncIterable<Buffer>, blockSize: number): AsyncGenerator<Buffer> {
  const limit = maxFrameDecodedBound(blockSize);
  const window: Promise<Buffer>[] = [];
  let sawShortFrame = false;
  const checked = (decoded: Buffer) => {
    // Every frame but the last decodes to exactly one block.
    if (decoded.length > blockSize || sawShortFrame) {
      throw new BundleFormatError(
        BundleErrorCode.DecompressionFailed,
        `a zstd frame decodes to ${decoded.length} bytes where a block of ${blockSize} was expected`,
      );
    }
    sawShortFrame = decoded.length < blockSize;
    return decoded;
  };
  const scan = (bytes: ByteView, offset: number) => {
    const result = scanZstdFrame(bytes, offset, limit);
    if (result === 'too-large') {
      throw new BundleFormatError(
        BundleErrorCode.DecompressionFailed,
        `a zstd frame could decode to more than ${limit} bytes (block size ${blockSize}); refusing it`,
      );
    }
    return result;
  };
  const start = (frame: Buffer) => {
    const decoding = decompressZstdFrame(frame, limit);
    decoding.catch(() => undefined); // awaited below, or abandoned on failure
    window.push(decoding);
  };

  let carry: Buffer | undefined; // the start of a frame that continues in the next part
  let skip = 0; // bytes of a skippable frame still to pass over: skipped, never buffered
  let frames = 0;
  for await (const chunk of input) {
    let at = Math.min(skip, chunk.length);
    skip -= at;
    if (carry) {
      const found = scan(joinedView(carry, chunk), 0);
      if (found === 'incomplete') {
        carry = Buffer.concat([carry, chunk]);
        continue;
      }
      at = found.length - carry.length;
      if (found.skippable) {
        skip = Math.max(0, at - chunk.length);
        at = Math.min(at, chunk.length);
      } else {
        start(Buffer.concat([carry, chunk.subarray(0, at)]));
        frames++;
      }
      carry = undefined;
    }
    while (at < chunk.length) {
      if (window.length >= DEFAULT_COMPRESSION_WINDOW) yield checked(await window.shift()!);
      const found = scan(chunk, at);
      if (found === 'incomplete') {
        carry = Buffer.from(chunk.subarray(at)); // a copy, so the part is not kept
        break;
      }
      if (found.skippable) {
        skip = Math.max(0, at + found.length - chunk.length);
        at = Math.min(at + found.length, chunk.length);
        continue;
      }
      start(chunk.subarray(at, at + found.length));
      frames++;
      at += found.length;
    }
  }
  if (carry || skip > 0)
    throw new BundleFormatError(
      BundleErrorCode.DecompressionFailed,
      `the compressed stream ends inside a zstd ${skip > 0 ? 'skippable ' : ''}frame`,
    );
  if (frames === 0)
    throw new BundleFormatError(
      BundleErrorCode.DecompressionFailed,
      'the compressed stream holds no zstd frame',
    );
  while (window.length) yield checked(await window.shift()!);
}

/**
 * gzip members, concatenated, through zlib's streaming inflater (memory bounded by its buffers).
 * Member boundaries carry no meaning; the stream must end exactly where its last member ends.
 */
async function* gzipDecode(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const gunzip = createGunzip({ chunkSize: 64 * 1024 });
  let fed = 0;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of input) {
      fed += chunk.length;
      yield chunk;
    }
  }
  const feeding = pipeline(Readable.from(counted(), { highWaterMark: 1 }), gunzip);
  feeding.catch(() => undefined); // its error also reaches the iteration below
  try {
    for await (const chunk of gunzip) yield chunk as Buffer;
    await feeding;
    // zlib stops quietly at zero bytes after a member (gzip(1) calls them padding) and ignores
    // what follows: the format allows nothing after the last member.
    if (gunzip.bytesWritten !== fed) {
      throw new BundleFormatError(
        BundleErrorCode.DecompressionFailed,
        `the gzip stream has ${fed - gunzip.bytesWritten} bytes after its last member`,
      );
    }
  } catch (error) {
    if (error instanceof BundleFormatError) throw error;
    throw new BundleFormatError(
      BundleErrorCode.DecompressionFailed,
      `the gzip stream does not decompress: ${describeError(error)}`,
      { cause: error },
    );
  } finally {
    gunzip.destroy();
  }
}

/**
 * Parses a manifest and checks its signature: what an upload endpoint needs before it queues a
 * verify job (e.g. to check that `image.user` is the uploading account). Look the signer's key
 * up by `signature.keyId` of `parseManifest()` if several keys may have signed it.
 */
export function readSignedManifest(manifestXml: string | Uint8Array, signerPublicKey: KeyObject): Manifest {
  const manifest = parseManifest(manifestXml);
  verifyManifestSignature(manifest, signerPublicKey);
  return manifest;
}

/**
 * Verifies a bundle (the verify job): the signature first, then every part's size and digest,
 * decryption, decompression, and finally the SHA-256 and size of the original image. Every
 * failure is a BundleFormatError with a code and a message meant for the seller.
 */
export async function unbundle(
  manifestXml: string | Uint8Array,
  options: UnbundleOptions,
): Promise<UnbundleResult> {
  const manifest = readSignedManifest(manifestXml, options.signerPublicKey);
  const key = unwrapBundleDataKey(manifest.encryption, options.privateKey);
  const expected = manifest.image;

  const hash = createHash('sha256');
  let size = 0;
  async function* verified(): AsyncGenerator<Buffer> {
    const input = plaintexts(manifest, key, options);
    const decoded =
      manifest.compression.algorithm === 'zstd'
        ? zstdDecode(input, manifest.compression.blockSize)
        : gzipDecode(input);
    for await (const chunk of decoded) {
      size += chunk.length;
      // Stop as soon as the image is longer than declared: a decompression bomb ends here.
      if (size > expected.size) {
        throw new BundleFormatError(
          BundleErrorCode.ImageSizeMismatch,
          `the image decodes to more than the ${expected.size} bytes the manifest declares`,
        );
      }
      hash.update(chunk);
      options.onProgress?.(size);
      yield chunk;
    }
    if (size !== expected.size) {
      throw new BundleFormatError(
        BundleErrorCode.ImageSizeMismatch,
        `the image decodes to ${size} bytes, but the manifest declares ${expected.size}`,
      );
    }
    const digest = hash.digest('hex');
    if (digest !== expected.digest) {
      throw new BundleFormatError(
        BundleErrorCode.ImageDigestMismatch,
        `the image decodes to SHA-256 ${digest}, but the manifest declares ${expected.digest}: the bundle does not hold the image it describes`,
      );
    }
  }

  try {
    if (options.output) {
      await pipeline(
        Readable.from(verified(), { highWaterMark: 1 }),
        options.output,
        options.signal ? { signal: options.signal } : {},
      );
    } else {
      for await (const _chunk of verified()) {
        // discard: only the digest matters
      }
    }
  } catch (error) {
    if (error instanceof BundleFormatError || options.signal?.aborted) throw error;
    throw new BundleFormatError(
      BundleErrorCode.OutputFailed,
      `writing the image failed: ${describeError(error)}`,
      { cause: error },
    );
  }
  return { manifest, digest: expected.digest, size };
}
