import { ConfigError } from '@imagemart/config';
import { z } from 'zod';
import { FilesystemObjectStore, type FilesystemObjectStoreOptions } from './filesystem.object-store.js';
import { type ObjectStore } from './object-store.js';
import { S3ObjectStore, type S3ObjectStoreOptions } from './s3.object-store.js';

export type ObjectStoreConfig =
  ({ driver: 'fs' } & FilesystemObjectStoreOptions) | ({ driver: 's3' } & S3ObjectStoreOptions);

/** Opens the configured store (the filesystem driver also sweeps a crashed writer's temp files). */
export async function createObjectStore(config: ObjectStoreConfig): Promise<ObjectStore> {
  switch (config.driver) {
    case 'fs':
      return FilesystemObjectStore.open(config);
    case 's3':
      return new S3ObjectStore(config);
  }
}

/**
 * The environment variables of the object store. A plain object schema, so that an app adds them
 * to its own: `baseConfigSchema.extend(objectStoreEnvSchema.shape)`; then
 * `createObjectStore(objectStoreConfigFromEnv(config))`.
 */
export const objectStoreEnvSchema = z.object({
  OBJECT_STORE_DRIVER: z.enum(['fs', 's3']).default('fs'),
  /** Filesystem driver: the store's directory, relative to the working directory unless absolute. */
  OBJECT_STORE_ROOT: z.string().min(1).default('.data/objects'),
  /** S3 driver: an S3-compatible server's URL; AWS when unset. */
  S3_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  S3_REGION: z
    .string()
    .regex(/^[a-z0-9-]+$/)
    .default('us-east-1'),
  S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name: 3-63 of a-z, 0-9, "." and "-"')
    .optional(),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  /** true for MinIO, Ceph and most S3-compatible servers. */
  S3_FORCE_PATH_STYLE: z.stringbool().default(false),
  /** Keys go under `<S3_PREFIX>/` in the bucket; lets deployments share a bucket. */
  S3_PREFIX: z.string().optional(),
});
export type ObjectStoreEnv = z.infer<typeof objectStoreEnvSchema>;

/** The store's configuration from validated variables; for S3 the bucket and keys are required. */
export function objectStoreConfigFromEnv(env: ObjectStoreEnv): ObjectStoreConfig {
  if (env.OBJECT_STORE_DRIVER === 'fs') return { driver: 'fs', root: env.OBJECT_STORE_ROOT };
  const { S3_BUCKET: bucket, S3_ACCESS_KEY_ID: accessKeyId, S3_SECRET_ACCESS_KEY: secretAccessKey } = env;
  if (bucket === undefined || accessKeyId === undefined || secretAccessKey === undefined) {
    const missing = Object.entries({
      S3_BUCKET: bucket,
      S3_ACCESS_KEY_ID: accessKeyId,
      S3_SECRET_ACCESS_KEY: secretAccessKey,
    })
      .filter(([, value]) => value === undefined)
      .map(([name]) => name);
    throw new ConfigError(`Invalid configuration: OBJECT_STORE_DRIVER=s3 needs ${missing.join(', ')}`);
  }
  return {
    driver: 's3',
    endpoint: env.S3_ENDPOINT,
    region: env.S3_REGION,
    bucket,
    accessKeyId,
    secretAccessKey,
    forcePathStyle: env.S3_FORCE_PATH_STYLE,
    prefix: env.S3_PREFIX,
  };
}
