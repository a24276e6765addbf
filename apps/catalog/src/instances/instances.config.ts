import { z } from 'zod';

/**
 * The catalog's launch settings (docs/launches.md lists them with their defaults). A plain shape
 * that catalog.config.ts adds to its schema.
 */
export const instancesConfigShape = {
  /** Instances an account may have pending or running at once (EC2's classic default: 20). */
  INSTANCE_RUNNING_LIMIT: z.coerce.number().int().min(1).max(1_000_000).default(20),
  /** Launch requests per account: a token bucket of this many... */
  INSTANCE_LAUNCH_BURST: z.coerce.number().int().min(1).max(1_000_000).default(50),
  /** ...refilled at this many requests a second. */
  INSTANCE_LAUNCH_REFILL_PER_SECOND: z.coerce.number().positive().max(1_000_000).default(5),
  /** How long the platform keeps billing's instance types and prices before asking again. */
  INSTANCE_TYPE_CACHE_TTL_MS: z.coerce.number().int().min(0).max(600_000).default(5_000),
  /**
   * How long a launch keeps an available image's record (owner, product codes, manifest) before
   * reading it again; 0 reads it every time. The launch statement checks the state at commit.
   */
  LAUNCH_IMAGE_CACHE_TTL_MS: z.coerce.number().int().min(0).max(600_000).default(5_000),
  /**
   * How often launch counts (popularity) are added to the images' counters: a launch records its
   * count beside the image, not on it (see launch-counts.ts), so `launchCount` lags by up to this.
   */
  LAUNCH_COUNT_FOLD_INTERVAL_MS: z.coerce.number().int().min(10).max(600_000).default(1_000),
  /**
   * How long the catalog keeps the permission service's allowance of a free image (owner, public,
   * launch permission) for an account and an image; it is reused only while the permission
   * service's generation counters of both are unchanged (launch-decisions.ts). 0 asks every time.
   */
  LAUNCH_DECISION_CACHE_TTL_MS: z.coerce.number().int().min(0).max(600_000).default(30_000),
  /** How long a launch waits for billing's prices and the permission decision, each. */
  LAUNCH_RPC_TIMEOUT_MS: z.coerce.number().int().min(50).max(30_000).default(2_000),
  /**
   * HMAC-SHA256 key of the launch grants a host fetches a bundle with (32 characters or more).
   * Required in production; elsewhere a random one per process is used when unset.
   */
  LAUNCH_GRANT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** How long a launch grant is good for. */
  LAUNCH_GRANT_TTL_SECONDS: z.coerce.number().int().min(10).max(86_400).default(300),
  /**
   * `simulated`: this process runs the instance host queue with the built-in simulated host.
   * `external`: it leaves the queue to an instance host agent elsewhere.
   */
  INSTANCE_HOST_DRIVER: z.enum(['simulated', 'external']).default('simulated'),
  /** Host jobs run at once by this process. */
  INSTANCE_HOST_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8),
  /**
   * The platform's public signing key (PEM), which the simulated host checks the manifests of
   * platform-made bundles with. Unset: the public keys the bundler-worker publishes in Redis
   * (`GET /v1/platform/keys`). The catalog holds no private key.
   */
  PLATFORM_SIGNING_PUBLIC_KEY_PEM: z.string().min(1).optional(),
  /** How long the published platform keys are kept before they are read from Redis again. */
  PLATFORM_KEYS_CACHE_TTL_MS: z.coerce.number().int().min(0).max(3_600_000).default(60_000),
};
