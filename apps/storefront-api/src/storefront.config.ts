import { z } from 'zod';
import { baseConfigSchema } from '@imagemart/config';
import { objectStoreEnvSchema } from '@imagemart/object-store';

// The object store takes the parts of image uploads (see uploads/upload-parts.ts).
const storefrontSettings = baseConfigSchema.extend(objectStoreEnvSchema.shape).extend({
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
  /**
   * Requests to /metrics per minute one client address may make (every gateway together), a
   * bucket of its own: every scrape asks the permission service about its key, so a flood of bad
   * keys must not reach it unthrottled. A scraper needs a few a minute; 0 turns the limit off.
   */
  RATE_LIMIT_METRICS_PER_MINUTE: z.coerce.number().int().min(0).max(1_000_000).default(60),
  /**
   * How long a client may take to send a request's headers, from the start of the request; past
   * it the gateway answers 408 and closes the connection. A connection that sends nothing is
   * closed by then too (or by HTTP_IDLE_TIMEOUT_MS, whichever Node applies first).
   */
  HTTP_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(500).max(300_000).default(10_000),
  /**
   * How long a client may take to send a whole request, body included (an upload's part of 64 MiB
   * needs some 2 Mbit/s within the default); past it, 408 and the connection closed.
   */
  HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(300_000),
  /**
   * How long a connection may go without a byte either way while a request is under way (a body
   * that stalls); it is then closed. Longer than RPC_TIMEOUT_MS, the longest the gateway itself is
   * quiet while it works on an answer.
   */
  HTTP_IDLE_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(15_000),
  /** How long a keep-alive connection may sit idle between requests before it is closed. */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  /** Origins (comma-separated) whose browser pages may call the API; empty: none (no CORS headers). */
  CORS_ORIGINS: z.string().max(4096).default(''),
  /** The body limit of an upload's part: the catalog's UPLOAD_PART_SIZE_BYTES (set both alike). */
  UPLOAD_PART_SIZE_BYTES: z.coerce.number().int().min(64 * 1024).max(1024 * 1024 * 1024).default(64 * 1024 * 1024),
  /** The signing secret of the Stripe webhook endpoint (whsec_…); unset: POST /v1/webhooks/stripe answers 404. */
  STRIPE_WEBHOOK_SECRET: z.string().regex(/^whsec_\S+$/, 'must be a Stripe webhook signing secret (whsec_…)').optional(),
  /** How old a webhook's signature timestamp may be, in seconds (Stripe's default: 300). */
  STRIPE_WEBHOOK_TOLERANCE_S: z.coerce.number().int().min(1).max(3600).default(300),
});

/** The settings, and the rules between them that Node's HTTP server needs. */
export const storefrontConfigSchema = storefrontSettings
  .refine((c) => c.HTTP_HEADERS_TIMEOUT_MS <= c.HTTP_REQUEST_TIMEOUT_MS, {
    message: 'HTTP_HEADERS_TIMEOUT_MS must not be longer than HTTP_REQUEST_TIMEOUT_MS',
    path: ['HTTP_HEADERS_TIMEOUT_MS'],
  })
  .refine((c) => c.HTTP_IDLE_TIMEOUT_MS > c.RPC_TIMEOUT_MS, {
    message: 'HTTP_IDLE_TIMEOUT_MS must be longer than RPC_TIMEOUT_MS (the gateway is quiet while it waits for the services)',
    path: ['HTTP_IDLE_TIMEOUT_MS'],
  });
export type StorefrontConfig = z.infer<typeof storefrontConfigSchema>;
