import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { startTestS3Server, type TestS3Server } from '@imagemart/testing';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectStoreContract, readAll } from './object-store-contract.fixture.js';
import { InvalidObjectKey, ObjectNotFound } from './object-store.exception.js';
import { S3ObjectStore, type S3ObjectStoreOptions } from './s3.object-store.js';

// Against a real S3-protocol server (s3rver) on loopback, through the real AWS SDK: no mocks.
describe('S3ObjectStore', () => {
  let server: TestS3Server;
  let bucket: string;
  const options = (more: Partial<S3ObjectStoreOptions> = {}): S3ObjectStoreOptions => ({
    endpoint: server.endpoint,
    region: server.region,
    bucket: server.bucket,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    forcePathStyle: true,
    ...more,
  });

  beforeAll(async () => {
    server = await startTestS3Server();
  });
  afterAll(async () => {
    await server?.stop();
  });

  describe('contract', () => {
    objectStoreContract({
      unsortedListing: true,
      // A bucket per test, so that each starts empty and can use the whole 1024-byte key space.
      async open() {
        bucket = `t-${randomBytes(6).toString('hex')}`;
        // 8 MiB parts: the 40 MiB stream takes 5, so part buffers get reused with 2 in flight.
        const store = new S3ObjectStore(options({ bucket, partSize: 8 * 1024 * 1024 }));
        expect(await store.createBucketIfMissing()).toBe(true);
        return store;
      },
      async pendingUploads() {
        const client = new S3Client({ ...options(), credentials: options() });
        try {
          const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
          return (out.Uploads ?? []).map((u) => u.Key ?? '');
        } finally {
          client.destroy();
        }
      },
    });
  });

  it('createBucketIfMissing creates once', async () => {
    const store = new S3ObjectStore(options({ bucket: `new-${randomBytes(6).toString('hex')}` }));
    expect(await store.createBucketIfMissing()).toBe(true);
    expect(await store.createBucketIfMissing()).toBe(false);
    await store.put('k', Buffer.from('x'));
    expect(await store.exists('k')).toBe(true);
    await store.close();
  });

  it('keeps stores with different prefixes in one bucket apart', async () => {
    const one = new S3ObjectStore(options({ prefix: 'deploy-one' }));
    const two = new S3ObjectStore(options({ prefix: 'deploy-two/' }));
    await one.put('same/key', Buffer.from('one'));
    await two.put('same/key', Buffer.from('two'));
    expect((await readAll(await one.get('same/key'))).toString()).toBe('one');
    expect(await one.list('')).toEqual({ keys: [{ key: 'same/key', size: 3 }], nextCursor: null });
    expect(await one.deletePrefix('same')).toBe(1);
    expect((await readAll(await two.get('same/key'))).toString()).toBe('two');
    // S3's 1024-byte key limit counts the prefix ("deploy-one/" is 11 bytes).
    const longKey = `${Array.from({ length: 5 }, () => 'k'.repeat(200)).join('/')}/${'k'.repeat(9)}`;
    expect(longKey.length).toBe(1014);
    await expect(one.put(longKey, Buffer.from('x'))).rejects.toBeInstanceOf(InvalidObjectKey);
    await Promise.all([one.close(), two.close()]);
  });

  it('reports a missing bucket as such, not as a missing object', async () => {
    const store = new S3ObjectStore(options({ bucket: 'no-such-bucket' }));
    const attempt = store.get('k');
    await expect(attempt).rejects.toThrow();
    await expect(attempt).rejects.not.toBeInstanceOf(ObjectNotFound);
    await store.close();
  });

  it('refuses bad driver options', () => {
    expect(() => new S3ObjectStore(options({ partSize: 1024 }))).toThrow(/partSize/);
    expect(() => new S3ObjectStore(options({ uploadConcurrency: 0 }))).toThrow(/uploadConcurrency/);
    expect(() => new S3ObjectStore(options({ prefix: '../up' }))).toThrow(InvalidObjectKey);
  });
});
