import { Buffer } from 'node:buffer';
import { type Readable } from 'node:stream';
import {
  BundleErrorCode,
  BundleFormatError,
  bundle,
  isBundleFormatError,
  parseManifest,
  type PlatformKeys,
} from '@imagemart/bundle-format';
import { BundleKeys, BundlingFailureCode, bundleSourceKeys, type BundleJob, type BundlingProgress } from '@imagemart/contracts';
import { ObjectStoreErrorCode, isObjectStoreError, type ObjectStore } from '@imagemart/object-store';
import type { Logger } from '@imagemart/observability';
import { BundlingFailure } from '../jobs/bundling.failure.js';
import { readObject } from '../storage/bundle-storage.js';

export interface BundleDeps {
  store: ObjectStore;
  keys: PlatformKeys;
  logger: Logger;
  /** Part uploads in flight at once (bundle()'s partConcurrency). */
  partConcurrency?: number;
}

export interface BundleRunOptions {
  onProgress?: (progress: BundlingProgress) => Promise<void> | void;
  signal?: AbortSignal;
}

export interface StoredBundle {
  manifestKey: string;
  imageSize: number;
  bundledSize: number;
  imageDigest: string;
  parts: number;
  /** True when an earlier attempt had already stored the whole bundle (the manifest was there). */
  alreadyStored: boolean;
}

/**
 * Makes stored parts durable in the background, a few behind the part being written, so the
 * data sync of one part overlaps the compression and writing of the next ones instead of
 * holding them up. `drain()` waits for all of them (and fails with the first failure).
 */
class PartFlusher {
  private readonly pending: Promise<void>[] = [];

  constructor(
    private readonly store: ObjectStore,
    private readonly maxPending = 2,
  ) {}

  async add(key: string): Promise<void> {
    const flushing = this.store.flush([key]);
    flushing.catch(() => undefined); // awaited in order below
    this.pending.push(flushing);
    // Bounded: dirty data waiting for its sync stays a few parts long.
    while (this.pending.length > this.maxPending) await this.pending.shift();
  }

  async drain(): Promise<void> {
    while (this.pending.length) await this.pending.shift();
  }

  async settle(): Promise<void> {
    await Promise.allSettled(this.pending.splice(0));
  }
}

const percent = (done: number, total: number) => (total === 0 ? 100 : Math.min(100, Math.floor((done / total) * 100)));

/** The raw image, counted: refused as soon as it runs past the declared size. */
async function* counted(source: AsyncIterable<Buffer>, declaredSize: number): AsyncGenerator<Buffer> {
  let size = 0;
  for await (const chunk of source) {
    const data = chunk;
    size += data.length;
    if (size > declaredSize) {
      throw new BundlingFailure(
        BundlingFailureCode.SourceSizeMismatch,
        `the uploaded image is longer than the ${declaredSize} bytes declared for it`,
      );
    }
    yield data;
  }
}

/**
 * The raw image as one stream: each source object in turn (one object, or an upload's parts in
 * their order). `open.current` is the object being read, so a failure can close it.
 */
async function* sourceChunks(store: ObjectStore, keys: readonly string[], open: { current?: Readable }): AsyncGenerator<Buffer> {
  for (const key of keys) {
    try {
      open.current = await store.get(key);
    } catch (err) {
      if (isObjectStoreError(err, ObjectStoreErrorCode.ObjectNotFound)) {
        throw new BundlingFailure(BundlingFailureCode.SourceMissing, `the uploaded image ${key} disappeared`, { cause: err });
      }
      throw err;
    }
    for await (const chunk of open.current) yield chunk as Buffer;
  }
}

/** Removes the objects the raw image was read from (best effort: a miss is logged, not fatal). */
export async function deleteSource(store: ObjectStore, source: BundleJob['source'], logger: Logger, imageId: string): Promise<void> {
  for (const key of bundleSourceKeys(source)) {
    await store.delete(key).catch((err: unknown) => logger.warn({ imageId, key, err }, 'could not remove an uploaded object'));
  }
}

/**
 * The bundle job's work: streams the raw image from the store through bundle() (compress,
 * encrypt, 10 MiB parts) into parts under `bundles/<imageId>/`, then writes the manifest, last,
 * so that a manifest is only ever visible with all its parts stored.
 *
 * Crash safety: a retried job that finds the manifest stored has nothing left to do; otherwise
 * it deletes whatever an earlier attempt left under the prefix and starts over (a bundle's data
 * key lives only in the process that made it, so parts of a dead attempt cannot be reused).
 * Any failure removes this attempt's parts before it is reported.
 */
export async function bundleImage(
  deps: BundleDeps,
  job: BundleJob,
  options: BundleRunOptions = {},
): Promise<StoredBundle> {
  const { store, keys, logger } = deps;
  const { imageId } = job;
  const manifestKey = BundleKeys.manifest(imageId);
  const prefix = BundleKeys.prefix(imageId);
  const progress = async (p: Omit<BundlingProgress, 'percent' | 'bytesTotal'>) =>
    options.onProgress?.({ ...p, bytesTotal: job.declaredSize, percent: percent(p.bytesDone, job.declaredSize) });

  const stored = await storedBundle(store, manifestKey, logger);
  if (stored) {
    logger.info({ imageId, manifestKey }, 'bundle already stored by an earlier attempt');
    await progress({ phase: 'done', bytesDone: job.declaredSize });
    // An attempt that stored the manifest may have died before it removed the upload.
    if (job.source.deleteWhenBundled) await deleteSource(store, job.source, logger, imageId);
    return stored;
  }
  const stale = await store.deletePrefix(prefix);
  if (stale > 0) logger.warn({ imageId, stale }, 'removed the parts an interrupted attempt left behind');

  await progress({ phase: 'reading', bytesDone: 0 });
  const sourceKeys = bundleSourceKeys(job.source);
  let storedSize = 0;
  for (const key of sourceKeys) {
    const info = await store.head(key);
    if (!info) {
      throw new BundlingFailure(BundlingFailureCode.SourceMissing, `the uploaded image ${key} is not in the object store`);
    }
    storedSize += info.size;
  }
  if (storedSize !== job.declaredSize) {
    throw new BundlingFailure(
      BundlingFailureCode.SourceSizeMismatch,
      `the uploaded image has ${storedSize} bytes, but ${job.declaredSize} were declared`,
    );
  }

  let bytesRead = 0;
  const flusher = new PartFlusher(store);
  const open: { current?: Readable } = {};
  try {
    const result = await bundle(counted(sourceChunks(store, sourceKeys, open), job.declaredSize), {
      image: {
        name: job.image.name,
        version: job.image.version,
        description: job.image.description,
        user: job.ownerId,
      },
      machineConfiguration: {
        architecture: job.image.architecture,
        virtualizationType: job.image.virtualizationType,
        kernelId: job.image.kernelId,
        ramdiskId: job.image.ramdiskId,
        blockDeviceMapping: job.image.blockDeviceMapping,
        productCodes: job.image.productCodes,
      },
      platformPublicKey: keys.wrapping.publicKey,
      signingKey: keys.signing.privateKey,
      compression: job.compression,
      partPrefix: imageId,
      partConcurrency: deps.partConcurrency,
      signal: options.signal,
      onProgress: (n) => void (bytesRead = n),
      onPart: async (part) => {
        const key = BundleKeys.part(manifestKey, part.filename);
        // Durable before the manifest, not before the next part: see PartFlusher.
        await store.put(key, part.data, { contentLength: part.size, deferSync: true });
        await flusher.add(key);
        await progress({ phase: 'bundling', bytesDone: bytesRead });
      },
    });
    await flusher.drain();
    if (result.imageSize !== job.declaredSize) {
      throw new BundlingFailure(
        BundlingFailureCode.SourceSizeMismatch,
        `the uploaded image has ${result.imageSize} bytes, but ${job.declaredSize} were declared`,
      );
    }
    if (result.imageDigest !== job.declaredSha256) {
      throw new BundlingFailure(
        BundlingFailureCode.SourceDigestMismatch,
        `the uploaded image has SHA-256 ${result.imageDigest}, but ${job.declaredSha256} was declared: it was changed or damaged on the way`,
      );
    }
    options.signal?.throwIfAborted();
    await progress({ phase: 'storing-manifest', bytesDone: result.imageSize });
    // Last, once every part is stored and durable: a visible manifest always has all its parts.
    await store.put(manifestKey, Buffer.from(result.manifestXml, 'utf8'), { contentType: 'application/xml' });
    await progress({ phase: 'done', bytesDone: result.imageSize });
    if (job.source.deleteWhenBundled) await deleteSource(store, job.source, logger, imageId);
    return {
      manifestKey,
      imageSize: result.imageSize,
      bundledSize: result.bundledSize,
      imageDigest: result.imageDigest,
      parts: result.parts.length,
      alreadyStored: false,
    };
  } catch (err) {
    if (open.current && !open.current.destroyed) open.current.destroy();
    await flusher.settle();
    // No orphan parts: a retry would delete them too, but a job that fails for good is not retried.
    await store.deletePrefix(prefix).catch((cleanupError: unknown) =>
      logger.warn({ imageId, err: cleanupError }, 'could not remove the parts of a failed attempt'),
    );
    throw toBundleFailure(err);
  }
}

/** bundle()'s own refusals (bad metadata, keys) are permanent; store and stream errors are not. */
function toBundleFailure(err: unknown): unknown {
  if (isBundleFormatError(err) && err.code !== BundleErrorCode.OutputFailed && err.code !== BundleErrorCode.CompressionFailed) {
    return new BundlingFailure(err.code, err.message, { cause: err });
  }
  return err;
}

/** The bundle an earlier attempt finished, if its manifest is stored and reads as one. */
async function storedBundle(store: ObjectStore, manifestKey: string, logger: Logger): Promise<StoredBundle | undefined> {
  const xml = await readObject(store, manifestKey);
  if (xml === undefined) return undefined;
  try {
    const manifest = parseManifest(xml);
    return {
      manifestKey,
      imageSize: manifest.image.size,
      bundledSize: manifest.image.bundledSize,
      imageDigest: manifest.image.digest,
      parts: manifest.parts.length,
      alreadyStored: true,
    };
  } catch (err) {
    // Not ours (we write manifests whole and last): start over, verify would refuse it anyway.
    logger.warn({ manifestKey, err: err instanceof BundleFormatError ? err.message : err }, 'stored manifest does not parse; bundling again');
    return undefined;
  }
}
