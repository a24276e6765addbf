import { createHash, type KeyObject } from 'node:crypto';
import { BundleErrorCode, BundleFormatError, describeError } from './bundle-format.exception.js';
import { readSignedManifest, type PartSource } from './bundle.reader.js';
import type { Manifest, ManifestPart } from './manifest.types.js';

export interface VerifyIntegrityOptions {
  /** Fetches one part as stored (a stream or bytes). `signal` aborts when the check gives up. */
  readPart: (part: ManifestPart, context: { signal: AbortSignal }) => PartSource | Promise<PartSource>;
  /** The key the manifest must be signed with: the platform's, or the seller's registered key. */
  signerPublicKey: KeyObject;
  /** Parts read at once, at most (default 2); failures are still reported in part order. */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called with the bundled bytes checked so far (parts in order). */
  onProgress?: (bytesChecked: number) => void;
}

export interface VerifyIntegrityResult {
  manifest: Manifest;
  /** Bytes of all parts together, each checked. */
  bundledSize: number;
  parts: number;
}

/** Reads one part as a stream, counting and hashing it without holding it. */
async function checkPart(source: PartSource, part: ManifestPart): Promise<void> {
  const wrongSize = (actual: string) =>
    new BundleFormatError(
      BundleErrorCode.PartSizeMismatch,
      `part ${part.index} (${part.filename}) is ${actual} bytes, not ${part.size}: it is truncated or was replaced`,
      { partIndex: part.index },
    );
  const hash = createHash('sha256');
  let size = 0;
  if (source instanceof Uint8Array) {
    size = source.length;
    if (size !== part.size) throw wrongSize(String(size));
    hash.update(source);
  } else {
    for await (const chunk of source) {
      if (!(chunk instanceof Uint8Array)) throw new TypeError('a part stream must yield bytes, not strings');
      size += chunk.length;
      if (size > part.size) throw wrongSize('more than'); // leaving the loop destroys the stream
      hash.update(chunk);
    }
    if (size !== part.size) throw wrongSize(String(size));
  }
  const digest = hash.digest('hex');
  if (digest !== part.digest) {
    throw new BundleFormatError(
      BundleErrorCode.DigestMismatch,
      `part ${part.index} (${part.filename}) has SHA-256 ${digest}, but the manifest says ${part.digest}: the part was changed, corrupted or swapped`,
      { partIndex: part.index },
    );
  }
}

/**
 * The "verify without decrypting" profile (docs/bundle-format.md): the manifest (the XML profile
 * and schema), its signature by the expected signer, and every part's size and SHA-256, in order.
 * It needs no private key, so anyone holding the signer's public key can run it; it proves that
 * the parts are the ones the signer signed, not that they decrypt to the image (that takes a key
 * the data key is wrapped for: unbundle()). Memory stays at a few stream chunks per part in flight.
 */
export async function verifyBundleIntegrity(
  manifestXml: string | Uint8Array,
  options: VerifyIntegrityOptions,
): Promise<VerifyIntegrityResult> {
  const manifest = readSignedManifest(manifestXml, options.signerPublicKey);
  const concurrency = Math.max(1, options.concurrency ?? 2);
  const controller = new AbortController();
  const stop = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', stop, { once: true });
  const check = async (part: ManifestPart) => {
    let source: PartSource;
    try {
      source = await options.readPart(part, { signal: controller.signal });
    } catch (error) {
      controller.signal.throwIfAborted();
      throw new BundleFormatError(
        BundleErrorCode.PartMissing,
        `part ${part.index} (${part.filename}) cannot be read: ${describeError(error)}`,
        { cause: error, partIndex: part.index },
      );
    }
    try {
      await checkPart(source, part);
    } catch (error) {
      if (error instanceof BundleFormatError) throw error;
      controller.signal.throwIfAborted();
      throw new BundleFormatError(
        BundleErrorCode.PartMissing,
        `part ${part.index} (${part.filename}) cannot be read: ${describeError(error)}`,
        { cause: error, partIndex: part.index },
      );
    }
  };
  const ahead: Promise<void>[] = [];
  let next = 0;
  let checked = 0;
  const start = () => {
    const checking = check(manifest.parts[next++]);
    checking.catch(() => undefined); // awaited below, or abandoned when an earlier part fails
    ahead.push(checking);
  };
  try {
    while (next < manifest.parts.length && ahead.length < concurrency) start();
    for (const part of manifest.parts) {
      options.signal?.throwIfAborted();
      await ahead.shift();
      if (next < manifest.parts.length) start();
      checked += part.size;
      options.onProgress?.(checked);
    }
  } finally {
    options.signal?.removeEventListener('abort', stop);
    controller.abort(); // readers still running: nobody needs their part
  }
  return { manifest, bundledSize: checked, parts: manifest.parts.length };
}
