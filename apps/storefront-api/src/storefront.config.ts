import { z } from 'zod';
import { baseConfigSchema } from '@imagemart/config';
import { objectStoreEnvSchema } from '@imagemart/object-store';

// The object store takes the parts of image uploads (see uploads/upload-parts.ts).
export const storefrontConfigSchema = baseConfigSchema.extend(objectStoreEnvSchema.shape).extend({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  /** The largest JSON body accepted; larger ones get 413. Uploads of images stream elsewhere. */
  BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  /**
   * How long the gateway may keep who holds an API key without asking the permission service
   * again. A revoked key stops working at once regardless (see auth/api-key.authenticator.ts);
   * this bounds only changes made behind the API's back. 0 turns the cache off.
   */
  AUTH_CACHE_TTL_MS: z.coerce.number().int().min(0).max(3_600_000).default(60_000),
  /**
   * How long a key the permission service did not know is answered 401 without asking again (by
   * its hash), so that a stream of bad keys is not a stream of calls. A new key is a new hash, so
   * this delays nothing but a suspended account's return. 0 turns it off.
   */
  AUTH_UNKNOWN_KEY_TTL_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
  /** How long /health waits for each dependency before it reports it down. */
  HEALTH_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(2000),
  /** Requests per minute one client address may make (every gateway together); 0 turns the limit off. */
  RATE_LIMIT_PER_ADDRESS_PER_MINUTE: z.coerce.number().int().min(0).max(10_000_000).default(6000),
  /** Requests per minute one API key may make (every gateway together); 0 turns the limit off. */
  RATE_LIMIT_PER_KEY_PER_MINUTE: z.coerce.number().int().min(0).max(10_000_000).default(3000),
  /** Origins (comma-separated) whose browser pages may call the API; empty: none (no CORS headers). */
  CORS_ORIGINS: z.string().max(4096).default(''),
  /** The body limit of an upload's part: the catalog's UPLOAD_PART_SIZE_BYTES (set both alike). */
  UPLOAD_PART_SIZE_BYTES: z.coerce.number().int().min(64 * 1024).max(1024 * 1024 * 1024).default(64 * 1024 * 1024),
  /** The signing secret of the Stripe webhook endpoint (whsec_…); unset: POST /v1/webhooks/stripe answers 404. */
  STRIPE_WEBHOOK_SECRET: z.string().regex(/^whsec_\S+$/, 'must be a Stripe webhook signing secret (whsec_…)').optional(),
  /** How old a webhook's signature timestamp may be, in seconds (Stripe's default: 300). */
  STRIPE_WEBHOOK_TOLERANCE_S: z.coerce.number().int().min(1).max(3600).default(300),
});
export type StorefrontConfig = z.infer<typeof storefrontConfigSchema>;
