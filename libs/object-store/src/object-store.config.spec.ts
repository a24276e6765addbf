import { baseConfigSchema, ConfigError, loadConfig } from '@imagemart/config';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FilesystemObjectStore } from './filesystem.object-store.js';
import { createObjectStore, objectStoreConfigFromEnv, objectStoreEnvSchema } from './object-store.config.js';
import { S3ObjectStore } from './s3.object-store.js';

const schema = baseConfigSchema.extend(objectStoreEnvSchema.shape);

describe('object store configuration', () => {
  it('defaults to the filesystem driver under .data/objects', () => {
    const config = loadConfig(schema, {});
    expect(config).toMatchObject({
      OBJECT_STORE_DRIVER: 'fs',
      OBJECT_STORE_ROOT: '.data/objects',
      S3_REGION: 'us-east-1',
    });
    expect(objectStoreConfigFromEnv(config)).toEqual({ driver: 'fs', root: '.data/objects' });
  });

  it('reads the S3 settings', () => {
    const config = loadConfig(schema, {
      OBJECT_STORE_DRIVER: 's3',
      S3_ENDPOINT: 'http://127.0.0.1:9000',
      S3_BUCKET: 'imagemart-bundles',
      S3_ACCESS_KEY_ID: 'minio',
      S3_SECRET_ACCESS_KEY: 'minio-secret',
      S3_FORCE_PATH_STYLE: 'true',
      S3_PREFIX: 'staging',
    });
    expect(objectStoreConfigFromEnv(config)).toEqual({
      driver: 's3',
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      bucket: 'imagemart-bundles',
      accessKeyId: 'minio',
      secretAccessKey: 'minio-secret',
      forcePathStyle: true,
      prefix: 'staging',
    });
  });

  it('stops start-up on bad or missing S3 settings, naming them', () => {
    expect(() => loadConfig(schema, { OBJECT_STORE_DRIVER: 'ftp' })).toThrow(/OBJECT_STORE_DRIVER/);
    expect(() => loadConfig(schema, { S3_BUCKET: 'Bad_Bucket', S3_FORCE_PATH_STYLE: 'maybe' })).toThrow(
      /S3_BUCKET.*S3_FORCE_PATH_STYLE/,
    );
    const incomplete = loadConfig(schema, { OBJECT_STORE_DRIVER: 's3', S3_BUCKET: 'b-1' });
    expect(() => objectStoreConfigFromEnv(incomplete)).toThrow(ConfigError);
    expect(() => objectStoreConfigFromEnv(incomplete)).toThrow(/S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY/);
  });

  it('creates the configured driver', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'imagemart-objects-'));
    try {
      const fs = await createObjectStore({ driver: 'fs', root: path.join(root, 'nested/objects') });
      expect(fs).toBeInstanceOf(FilesystemObjectStore);
      await fs.put('k', Buffer.from('x'));
      expect(await fs.exists('k')).toBe(true);
      await fs.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
    const s3 = await createObjectStore({
      driver: 's3',
      region: 'us-east-1',
      bucket: 'b-1',
      accessKeyId: 'a',
      secretAccessKey: 's',
    });
    expect(s3).toBeInstanceOf(S3ObjectStore);
    await s3.close();
  });
});
