import { type Readable } from 'node:stream';

/** A body to store: a Buffer, or a stream of any length that is never held in memory whole. */
export type ObjectBody = Readable | Buffer;

export interface PutOptions {
  /** When given, a body of any other length is refused with ContentLengthMismatch and nothing is stored. */
  contentLength?: number;
  /** Printable ASCII; defaults to `application/octet-stream`. */
  contentType?: string;
  /** User metadata: lowercase `[a-z0-9-]` names, printable ASCII values, 2 KiB in all (S3's limit). */
  metadata?: Record<string, string>;
  /**
   * Return once the object is stored and visible, without waiting for it to be durable: a power
   * cut before {@link ObjectStore.flush} of its key may lose or truncate it. For writers that
   * commit many objects at once behind one that names them (a bundle's parts before its
   * manifest). The put stays atomic for readers. Only the filesystem driver defers anything; an
   * S3 put is durable when it returns.
   */
  deferSync?: boolean;
}

export interface PutResult {
  key: string;
  size: number;
  etag?: string;
}

/** A byte range; `end` is inclusive (as in HTTP `Range` and `fs.createReadStream`) and may run past the end. */
export interface GetOptions {
  start?: number;
  end?: number;
}

export interface ObjectInfo {
  size: number;
  etag?: string;
  lastModified: Date;
  contentType: string;
  metadata: Record<string, string>;
}

export interface ListOptions {
  /** The `nextCursor` of the previous page. */
  cursor?: string;
  /** 1..1000, default 1000. */
  limit?: number;
}

export interface ListedObject {
  key: string;
  size: number;
}

export interface ListPage {
  /** Sorted by key, byte order. */
  keys: ListedObject[];
  /** Null on the last page. */
  nextCursor: string | null;
}

/**
 * Object storage for bundles, uploads and manifests. Keys follow object-key.ts in every driver.
 * A put is atomic: a reader sees the whole new object or the previous state, never a part.
 */
export interface ObjectStore {
  put(key: string, body: ObjectBody, options?: PutOptions): Promise<PutResult>;
  /** Rejects with ObjectNotFound when there is no object, InvalidRange when `start` is past the end. */
  get(key: string, range?: GetOptions): Promise<Readable>;
  /** Null when there is no object. */
  head(key: string): Promise<ObjectInfo | null>;
  exists(key: string): Promise<boolean>;
  /** Succeeds whether or not the object exists. */
  delete(key: string): Promise<void>;
  /** Deletes every object whose key starts with the (non-empty) prefix; returns how many. */
  deletePrefix(prefix: string): Promise<number>;
  list(prefix: string, options?: ListOptions): Promise<ListPage>;
  /** Makes the objects of earlier `deferSync` puts durable (keys with no object are skipped). */
  flush(keys: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
export const MAX_LIST_LIMIT = 1000;
