import { createHash } from 'node:crypto';
import { Readable, Transform, pipeline } from 'node:stream';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { APP_CONFIG } from '@imagemart/config';
import { ErrorCode, UploadKeys } from '@imagemart/contracts';
import {
  ObjectStoreErrorCode,
  createObjectStore,
  isObjectStoreError,
  objectStoreConfigFromEnv,
  type ObjectStore,
} from '@imagemart/object-store';
import { ApiProblem } from '../problem/api-problem.js';
import type { StorefrontConfig } from '../storefront.config.js';

/** The one route that reads a raw body: an upload's part. */
export const PART_ROUTE = '/v1/uploads/:uploadId/parts/:partNumber';
const RAW = 'application/octet-stream';

export interface StoredPart {
  size: number;
  sha256: string;
}

/**
 * The gateway's side of an upload's parts: a raw body parser for the part route only, and the
 * object store the parts stream into. A part's body goes straight from the socket into the store
 * (the S3 driver holds a few of its multipart chunks at a time, the filesystem driver none), with
 * its SHA-256 computed on the way; it is never buffered whole nor written twice on this machine.
 */
@Injectable()
export class UploadParts implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(UploadParts.name);
  private store?: ObjectStore;

  constructor(
    @Inject(APP_CONFIG) private readonly config: StorefrontConfig,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  async onModuleInit(): Promise<void> {
    this.installPartBodyParser(this.adapterHost.httpAdapter.getInstance<FastifyInstance>());
    this.store = await createObjectStore(objectStoreConfigFromEnv(this.config));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.store?.close();
  }

  /**
   * `application/octet-stream` bodies, on the part route only, handed to the route as the request
   * stream, unread. A part has a Content-Length (the route checks it is exactly the part's size
   * before reading a byte) and at most the part size: this route's body limit. The global JSON
   * limit stays as it is for every other route, which refuses a raw body with 415.
   */
  private installPartBodyParser(fastify: FastifyInstance): void {
    const limit = this.config.UPLOAD_PART_SIZE_BYTES;
    fastify.addContentTypeParser(RAW, (request: FastifyRequest, payload, done) => {
      if (request.routeOptions.url !== PART_ROUTE) {
        done(new ApiProblem(ErrorCode.UnsupportedMediaType, 'This route accepts request bodies as application/json only.'), undefined);
        return;
      }
      const length = request.headers['content-length'];
      if (length === undefined || !/^\d{1,16}$/.test(length)) {
        done(new ApiProblem(ErrorCode.MalformedRequest, 'A part needs a Content-Length header with its exact size in bytes.'), undefined);
        return;
      }
      if (Number(length) > limit) {
        done(new ApiProblem(ErrorCode.PayloadTooLarge, `A part has at most ${limit} bytes; this one says ${length}.`), undefined);
        return;
      }
      done(null, payload);
    });
  }

  private get objects(): ObjectStore {
    if (!this.store) throw new Error('the upload object store is not open yet');
    return this.store;
  }

  /**
   * Streams `body` into `uploads/<uploadId>/part-<n>` (or `key`: a seller-made bundle's part goes
   * beside its manifest's place), replacing an earlier part of that number.
   * A body of another length than `size` (a dropped connection, say) stores nothing and leaves
   * any earlier part as it was.
   */
  async put(uploadId: string, partNumber: number, body: Readable, size: number, key = UploadKeys.part(uploadId, partNumber)): Promise<StoredPart> {
    const hash = createHash('sha256');
    let seen = 0;
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        seen += chunk.length;
        callback(null, chunk);
      },
    });
    // A failing body (the client went away) fails the store's read, so the put stores nothing.
    let bodyFailed = false;
    const counted = pipeline(body, hashing, (err) => {
      if (!err) return;
      bodyFailed = true;
      hashing.destroy(err);
    });
    try {
      await this.objects.put(key, counted, { contentLength: size, contentType: RAW });
    } catch (err) {
      if (bodyFailed || isObjectStoreError(err, ObjectStoreErrorCode.ContentLengthMismatch)) {
        throw new ApiProblem(ErrorCode.InvalidParameterValue, `Part ${partNumber} must have ${size} bytes; its body ended after ${seen}: nothing was stored.`, [
          { path: 'body', message: `must be ${size} bytes` },
        ]);
      }
      throw err;
    }
    if (seen !== size) throw new Error(`stored ${size} bytes of part ${partNumber} but hashed ${seen}`);
    return { size, sha256: hash.digest('hex') };
  }

  async deletePart(uploadId: string, partNumber: number, key = UploadKeys.part(uploadId, partNumber)): Promise<void> {
    await this.objects.delete(key);
  }

  async deletePrefix(prefix: string): Promise<number> {
    return this.objects.deletePrefix(prefix);
  }

  /** Removes every part of an upload; returns how many there were. */
  async deleteUpload(uploadId: string): Promise<number> {
    const removed = await this.objects.deletePrefix(UploadKeys.prefix(uploadId));
    if (removed > 0) this.logger.log(`removed ${removed} parts of ${uploadId}`);
    return removed;
  }
}
