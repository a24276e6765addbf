import { z } from 'zod';
import { baseConfigSchema } from '@imagemart/config';

export const storefrontConfigSchema = baseConfigSchema.extend({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  /** The largest JSON body accepted; larger ones get 413. Uploads of images stream elsewhere. */
  BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  /** How long /health waits for each dependency before it reports it down. */
  HEALTH_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(2000),
});
export type StorefrontConfig = z.infer<typeof storefrontConfigSchema>;
