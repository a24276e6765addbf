import {
  AbortMultipartUploadCommand,
  type BucketLocationConstraint,
  CompleteMultipartUploadCommand,
  type CompletedPart,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { assertValidPrefix, MAX_OBJECT_KEY_BYTES, parseObjectKey } from './object-key.js';
import {
  DEFAULT_CONTENT_TYPE,
  type GetOptions,
  type ListOptions,
  type ListPage,
  type ObjectBody,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
  type PutResult,
} from './object-store.js';
import {
  bodyChunks,
  checkContentLength,
  checkCursor,
  checkPutOptions,
  checkRange,
  discardBody,
  listLimit,
} from './object-store.util.js';
import {
  InvalidObjectKey,
  ObjectNotFound,
  ObjectStoreError,
  ObjectStoreErrorCode,
} from './object-store.exception.js';

export interface S3ObjectStoreOptions {
  /** For S3-compatible servers (MinIO, Ceph, s3rver); AWS when absent. */
  endpoint?: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** `http://host/bucket/key` addressing, which MinIO, Ceph and s3rver usually need. */
  forcePathStyle?: boolean;
  /** Keys are stored under `<prefix>/`, so that several stores can share a bucket. */
  prefix?: string;
  /** Multipart part size for streams, 5 MiB to 5 GiB. Default 16 MiB: a 10 MiB bundle part fits in one PUT. */
  partSize?: number;
  /** Parts in flight at once. Memory for one stream put is about (uploadConcurrency + 1) × partSize. Default 2. */
  uploadConcurrency?: number;
}

const MiB = 1024 * 1024;
const MIN_PART_SIZE = 5 * MiB;
const MAX_PART_SIZE = 5 * 1024 * MiB;
const MAX_PARTS = 10_000;

interface Part {
  data: Buffer;
  last: boolean;
}

/**
 * Objects in an S3 bucket, through `@aws-sdk/client-s3`. A Buffer, or a stream that ends within
 * one part, is one PutObject. A longer stream goes up as a multipart upload that S3 publishes
 * only on completion, and that is aborted on any failure; either way no reader ever sees part of
 * an object. Parts are Buffers, so the SDK can retry them, and memory stays bounded whatever the
 * object's size.
 */
export class S3ObjectStore implements ObjectStore {
  readonly bucket: string;
  private readonly client: S3Client;
  private readonly prefix: string;
  private readonly region: string;
  private readonly partSize: number;
  private readonly concurrency: number;

  constructor(options: S3ObjectStoreOptions) {
    const { partSize = 16 * MiB, uploadConcurrency = 2 } = options;
    if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE) {
      throw new ObjectStoreError(
        ObjectStoreErrorCode.InvalidArgument,
        `partSize must be ${MIN_PART_SIZE}..${MAX_PART_SIZE} bytes`,
      );
    }
    if (!Number.isSafeInteger(uploadConcurrency) || uploadConcurrency < 1) {
      throw new ObjectStoreError(
        ObjectStoreErrorCode.InvalidArgument,
        'uploadConcurrency must be a positive integer',
      );
    }
    const prefix = (options.prefix ?? '').replace(/\/+$/, '');
    if (prefix !== '') parseObjectKey(prefix);
    this.prefix = prefix === '' ? '' : `${prefix}/`;
    this.bucket = options.bucket;
    this.region = options.region;
    this.partSize = partSize;
    this.concurrency = uploadConcurrency;
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
      // The SDK's default CRC32 checksums (streamed as trailers) are not understood by every
      // S3-compatible server (s3rver, older MinIO and Ceph): send them only where S3 requires one.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  /** Creates the bucket unless it exists; true if it created it. For development and tests: production buckets are provisioned. */
  async createBucketIfMissing(): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return false;
    } catch (err) {
      if (httpStatus(err) !== 404) throw err;
    }
    try {
      // us-east-1 is the one region that takes no location constraint.
      const configuration =
        this.region === 'us-east-1'
          ? undefined
          : { LocationConstraint: this.region as BucketLocationConstraint };
      await this.client.send(
        new CreateBucketCommand({ Bucket: this.bucket, CreateBucketConfiguration: configuration }),
      );
      return true;
    } catch (err) {
      if (errorName(err) === 'BucketAlreadyOwnedByYou') return false;
      throw err;
    }
  }

  async put(key: string, body: ObjectBody, options: PutOptions = {}): Promise<PutResult> {
    try {
      const target = {
        Bucket: this.bucket,
        Key: this.keyOf(key),
        ContentType: options.contentType ?? DEFAULT_CONTENT_TYPE,
        Metadata: options.metadata,
      };
      checkPutOptions(options);
      const { contentLength } = options;
      if (Buffer.isBuffer(body) && body.length <= this.partSize) {
        checkContentLength(body.length, contentLength);
        const out = await this.client.send(new PutObjectCommand({ ...target, Body: body }));
        return { key, size: body.length, etag: out.ETag };
      }
      // A known length sizes the part buffer (no 16 MiB buffer for a 1 KiB body) and raises the
      // part size when 10,000 parts would not hold the object.
      const partSize =
        contentLength === undefined
          ? this.partSize
          : Math.max(1, Math.min(this.partSize, contentLength), Math.ceil(contentLength / MAX_PARTS));
      // Part buffers are reused once uploaded, so memory stays at (concurrency + 1) parts rather
      // than whatever the garbage collector has not yet freed.
      const spare: Buffer[] = [];
      const parts = partsOf(
        bodyChunks(body, contentLength),
        () => spare.pop() ?? Buffer.allocUnsafe(partSize),
      );
      const first = await parts.next();
      if (first.done) throw new Error('partsOf yields at least one part');
      if (first.value.last) {
        const out = await this.client.send(new PutObjectCommand({ ...target, Body: first.value.data }));
        return { key, size: first.value.data.length, etag: out.ETag };
      }
      return { key, ...(await this.multipartUpload(target, first.value.data, parts, spare)) };
    } catch (err) {
      discardBody(body);
      throw err;
    }
  }

  async get(key: string, range: GetOptions = {}): Promise<Readable> {
    const Key = this.keyOf(key);
    checkRange(range);
    const ranged = range.start !== undefined || range.end !== undefined;
    try {
      const out = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key,
          Range: ranged ? `bytes=${range.start ?? 0}-${range.end ?? ''}` : undefined,
        }),
      );
      // In Node the body is the HTTP response itself: a Readable, streamed, never buffered.
      if (!(out.Body instanceof Readable)) throw new Error('S3 GetObject returned no stream body');
      return out.Body;
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFound(key, { cause: err });
      if (errorName(err) === 'InvalidRange' || httpStatus(err) === 416) {
        throw new ObjectStoreError(ObjectStoreErrorCode.InvalidRange, `range starts past the end of ${key}`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const Key = this.keyOf(key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return {
        size: out.ContentLength ?? 0,
        etag: out.ETag,
        lastModified: out.LastModified ?? new Date(0),
        contentType: out.ContentType ?? DEFAULT_CONTENT_TYPE,
        metadata: out.Metadata ?? {},
      };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.head(key)) !== null;
  }

  async delete(key: string): Promise<void> {
    const Key = this.keyOf(key);
    // S3 answers 204 whether or not the key existed.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
  }

  async deletePrefix(prefix: string): Promise<number> {
    assertValidPrefix(prefix, { allowEmpty: false });
    let count = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.client.send(
        new ListObjectsCommand({ Bucket: this.bucket, Prefix: this.prefix + prefix, Marker: after }),
      );
      const objects = (page.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [{ Key: o.Key }]));
      if (objects.length === 0) return count;
      const out = await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: objects, Quiet: true } }),
      );
      const failed = out.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0];
        throw new ObjectStoreError(
          ObjectStoreErrorCode.DeleteFailed,
          `${failed.length} objects not deleted, first ${first.Key ?? '?'}: ${first.Code ?? ''} ${first.Message ?? ''}`,
        );
      }
      count += objects.length;
      if (!page.IsTruncated) return count;
      after = objects.at(-1)!.Key;
    }
  }

  /** An S3 put is durable when it returns: nothing to do. */
  // eslint-disable-next-line @typescript-eslint/require-await -- async: a bad key rejects, never throws
  async flush(keys: readonly string[]): Promise<void> {
    for (const key of keys) parseObjectKey(key);
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    assertValidPrefix(prefix);
    const limit = listLimit(options.limit);
    checkCursor(options.cursor);
    // ListObjects (v1): its Marker is exactly "start after this key", our cursor, and every
    // S3-compatible server has it. (s3rver's v2 continuation tokens use DES, which OpenSSL 3 lacks:
    // jamhall/s3rver#818.)
    const out = await this.client.send(
      new ListObjectsCommand({
        Bucket: this.bucket,
        Prefix: this.prefix + prefix,
        Marker: options.cursor === undefined ? undefined : this.prefix + options.cursor,
        MaxKeys: limit,
      }),
    );
    const keys = (out.Contents ?? []).flatMap((o) =>
      o.Key === undefined ? [] : [{ key: o.Key.slice(this.prefix.length), size: o.Size ?? 0 }],
    );
    return { keys, nextCursor: out.IsTruncated && keys.length > 0 ? keys.at(-1)!.key : null };
  }

  close(): Promise<void> {
    this.client.destroy();
    return Promise.resolve();
  }

  /** The key in the bucket. S3's 1024-byte limit covers the store prefix too. */
  private keyOf(key: string): string {
    parseObjectKey(key);
    const full = this.prefix + key;
    if (full.length > MAX_OBJECT_KEY_BYTES) {
      throw new InvalidObjectKey(
        key,
        `longer than ${MAX_OBJECT_KEY_BYTES - this.prefix.length} bytes, the most this store's prefix leaves`,
      );
    }
    return full;
  }

  private async multipartUpload(
    target: { Bucket: string; Key: string; ContentType: string; Metadata?: Record<string, string> },
    firstPart: Buffer,
    rest: AsyncGenerator<Part>,
    spare: Buffer[],
  ): Promise<{ size: number; etag?: string }> {
    const { Bucket, Key } = target;
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand(target));
    const completed: CompletedPart[] = [];
    const inflight = new Set<Promise<void>>();
    // Set by a failed part; the loop stops reading the body once it is.
    const state: { failure?: { error: unknown } } = {};
    let size = 0;
    const upload = (PartNumber: number, Body: Buffer): void => {
      size += Body.length;
      const sent: Promise<void> = this.client
        .send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body }))
        .then(
          ({ ETag }) => void completed.push({ PartNumber, ETag }),
          (error: unknown) => void (state.failure ??= { error }),
        )
        .finally(() => {
          inflight.delete(sent);
          spare.push(Body);
        });
      inflight.add(sent);
    };
    try {
      upload(1, firstPart);
      let partNumber = 1;
      // The next part is read while earlier ones upload; at most `concurrency` are in flight.
      for await (const { data } of rest) {
        while (inflight.size >= this.concurrency && !state.failure) await Promise.race(inflight);
        if (state.failure) break;
        if (++partNumber > MAX_PARTS) {
          throw new ObjectStoreError(
            ObjectStoreErrorCode.InvalidArgument,
            `more than ${MAX_PARTS} parts: pass contentLength or a larger partSize`,
          );
        }
        upload(partNumber, data);
      }
      await Promise.all(inflight);
      if (state.failure) throw state.failure.error;
      completed.sort((a, b) => a.PartNumber! - b.PartNumber!);
      const out = await this.client.send(
        new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: completed } }),
      );
      return { size, etag: out.ETag };
    } catch (err) {
      await Promise.all(inflight);
      // Best effort: the caller needs the first error, and a bucket lifecycle rule
      // (AbortIncompleteMultipartUpload) removes what an abort that fails leaves behind.
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }))
        .catch(() => undefined);
      throw err;
    }
  }
}

/**
 * Cuts the body into parts of `newBuffer()`'s size, the last one shorter (or empty, for an empty
 * body). A full part is held back until the next byte arrives, so the consumer learns which part
 * is the last without reading a whole part ahead.
 */
async function* partsOf(chunks: AsyncIterable<Buffer>, newBuffer: () => Buffer): AsyncGenerator<Part> {
  let part = newBuffer();
  let filled = 0;
  for await (const chunk of chunks) {
    for (let offset = 0; offset < chunk.length;) {
      if (filled === part.length) {
        yield { data: part, last: false };
        part = newBuffer();
        filled = 0;
      }
      const copied = chunk.copy(part, filled, offset);
      filled += copied;
      offset += copied;
    }
  }
  yield { data: part.subarray(0, filled), last: true };
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

/** No such key. A missing bucket is a deployment error and stays one (a HEAD's bare 404 cannot tell them apart). */
function isNotFound(err: unknown): boolean {
  const name = errorName(err);
  return name !== 'NoSuchBucket' && (name === 'NoSuchKey' || name === 'NotFound' || httpStatus(err) === 404);
}
