import { z } from 'zod';
import { baseConfigSchema } from '@imagemart/config';
import { objectStoreEnvSchema } from '@imagemart/object-store';
import { instancesConfigShape } from './instances/instances.config.js';

// The object store and the launch settings serve the simulated instance host (docs/launches.md).
export const catalogConfigSchema = baseConfigSchema.extend(objectStoreEnvSchema.shape).extend(instancesConfigShape).extend({
  /**
   * How long a listing page waits for billing's price quote. Past it the listing answers with
   * `price: null` (and the miss is logged): the page loads without prices rather than not at all.
   */
  PRICE_QUOTE_TIMEOUT_MS: z.coerce.number().int().min(50).max(10_000).default(800),
  /** The part size of new uploads (every part but the last); the gateway takes no larger part body. */
  UPLOAD_PART_SIZE_BYTES: z.coerce.number().int().min(64 * 1024).max(1024 * 1024 * 1024).default(64 * 1024 * 1024),
  /** Pending images a seller may have at once (registered, not yet available or failed): 400 ResourceLimitExceeded beyond. */
  SELLER_PENDING_IMAGE_LIMIT: z.coerce.number().int().min(1).max(1_000_000).default(20),
  /** Open uploads a seller may have at once: 400 UploadLimitExceeded beyond. */
  SELLER_OPEN_UPLOAD_LIMIT: z.coerce.number().int().min(1).max(1_000_000).default(10),
  /** Declared bytes of a seller's open uploads together (1 TiB by default): 400 UploadLimitExceeded beyond. */
  SELLER_OPEN_UPLOAD_BYTES_LIMIT: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).default(1024 ** 4),
  /**
   * An open upload with no part stored for this long is aborted (its stored parts deleted) and
   * its image marked failed; a pending image that got no bundle for this long (no upload under
   * way or being bundled) is marked failed. 24 hours by default.
   */
  UPLOAD_EXPIRY_MS: z.coerce.number().int().min(1_000).max(365 * 86_400_000).default(86_400_000),
  /** How often each catalog process looks for expired uploads and pending images (replicas share the work). */
  UPLOAD_EXPIRY_SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).max(86_400_000).default(60_000),
  /**
   * Image list pages are cached in memory per caller and query, invalidated by every change that
   * can alter a list (see list-cache.ts). The TTL bounds how old a launch count on a cached page
   * can be (launches do not invalidate); 0 turns the cache off.
   */
  CATALOG_LIST_CACHE_TTL_MS: z.coerce.number().int().min(0).max(600_000).default(5_000),
  CATALOG_LIST_CACHE_MAX_ENTRIES: z.coerce.number().int().min(0).max(1_000_000).default(10_000),
  /** The JSON size of the cached pages together. */
  CATALOG_LIST_CACHE_MAX_BYTES: z.coerce.number().int().min(0).max(4_294_967_296).default(64 * 1024 * 1024),
});
export type CatalogConfig = z.infer<typeof catalogConfigSchema>;
