import { z } from 'zod';
import type { BundleImageMetadata } from '../bundling/bundling.jobs.js';
import { accountIdSchema } from '../permission/permission.schemas.js';

/**
 * Domain events: what one service tells the others through its outbox. Each consuming service has
 * one BullMQ queue; the producer's outbox writes one row per queue that subscribes to the event
 * (see {@link EVENT_ROUTES}), so adding a consumer never changes a producer's code.
 *
 * Every payload here describes the whole current state of one aggregate with a `revision` that
 * grows by one with each change. A consumer keeps a row only when the incoming revision is higher
 * than the one it holds, so duplicates and events that overtake each other are harmless.
 */

/** The queue each consuming service reads its events from. */
export const EventQueue = {
  catalog: 'catalog-events',
  permission: 'permission-events',
  billing: 'billing-events',
  bundling: 'bundling-events',
} as const;
export type EventQueue = (typeof EventQueue)[keyof typeof EventQueue];

export const DomainEventType = {
  /** An image's record changed (registered, state, product codes, owner-visible fields). */
  imageChanged: 'catalog.image.changed',
  /** An image's launch permissions or the share states of its grants changed. */
  launchPermissionChanged: 'permission.launch-permission.changed',
  /** A subscription was created or changed status. */
  subscriptionChanged: 'billing.subscription.changed',
  /** An image's bundle was written and verified: the image may become available. */
  bundleVerified: 'bundling.bundle.verified',
  /** Bundling or verifying an image failed for good: the image becomes failed, with the reason. */
  bundleFailed: 'bundling.bundle.failed',
  /** A seller completed the upload of a raw image: the bundler bundles its parts. */
  uploadCompleted: 'catalog.upload.completed',
  /** An instance was launched or changed state: what billing meters usage from. */
  instanceChanged: 'catalog.instance.changed',
} as const;
export type DomainEventType = (typeof DomainEventType)[keyof typeof DomainEventType];

/** Which queues receive each event. */
export const EVENT_ROUTES: Record<DomainEventType, readonly EventQueue[]> = {
  // The bundler deletes a deregistered image's bundle.
  'catalog.image.changed': [EventQueue.permission, EventQueue.bundling],
  'permission.launch-permission.changed': [EventQueue.catalog],
  'billing.subscription.changed': [EventQueue.permission],
  'bundling.bundle.verified': [EventQueue.catalog],
  'bundling.bundle.failed': [EventQueue.catalog],
  // The bundler turns a completed upload into the image's bundle job.
  'catalog.upload.completed': [EventQueue.bundling],
  // Billing meters instance time from it.
  'catalog.instance.changed': [EventQueue.billing],
};

export const imageIdSchema = z.string().regex(/^ami-[0-9a-f]{17}$/, 'must be ami- followed by 17 lowercase hex digits');
/** A marketplace product code: `prod-` followed by 20 lowercase letters or digits. */
export const productCodeSchema = z.string().regex(/^prod-[0-9a-z]{20}$/, 'must be prod- followed by 20 lowercase letters or digits');

export const IMAGE_STATES = ['pending', 'available', 'failed', 'deregistered'] as const;
export const imageStateSchema = z.enum(IMAGE_STATES);
export type ImageState = z.infer<typeof imageStateSchema>;

export const imageChangedSchema = z.object({
  imageId: imageIdSchema,
  ownerId: accountIdSchema,
  state: imageStateSchema,
  productCodes: z.array(productCodeSchema),
  revision: z.number().int().min(1),
});
export type ImageChanged = z.infer<typeof imageChangedSchema>;

export const SHARE_STATES = ['pending', 'accepted', 'rejected'] as const;
export const shareStateSchema = z.enum(SHARE_STATES);
export type ShareState = z.infer<typeof shareStateSchema>;

export const launchPermissionChangedSchema = z.object({
  imageId: imageIdSchema,
  /** The group `all` holds a launch permission: the image is public. */
  public: z.boolean(),
  /** Every account named in a launch permission, with the state of its share. */
  grants: z.array(z.object({ accountId: accountIdSchema, shareState: shareStateSchema })),
  revision: z.number().int().min(1),
});
export type LaunchPermissionChanged = z.infer<typeof launchPermissionChangedSchema>;

export const SUBSCRIPTION_STATUSES = ['active', 'past_due', 'canceled'] as const;
export const subscriptionStatusSchema = z.enum(SUBSCRIPTION_STATUSES);
export type SubscriptionStatus = z.infer<typeof subscriptionStatusSchema>;

export const subscriptionChangedSchema = z.object({
  subscriptionId: z.string().min(1).max(64),
  accountId: accountIdSchema,
  productCode: productCodeSchema,
  status: subscriptionStatusSchema,
  /** Whether the subscription entitles its account to launch the product now. */
  entitled: z.boolean(),
  revision: z.number().int().min(1),
});
export type SubscriptionChanged = z.infer<typeof subscriptionChangedSchema>;

/**
 * The outcome of bundling one image. Unlike the state events above it is a fact that happens once
 * per image: applying it twice is harmless, and a catalog never moves a deregistered image back.
 */
export const bundleVerifiedSchema = z.object({
  imageId: imageIdSchema,
  /** Object key of the signed manifest. */
  manifestLocation: z.string().min(1).max(1024),
  /** Bytes of the original image. */
  imageSize: z.number().int().min(0),
  /** Bytes of all parts together. */
  bundledSize: z.number().int().min(0),
  /** SHA-256 of the original image, lowercase hex. */
  imageDigest: z.string().regex(/^[0-9a-f]{64}$/),
  /**
   * SHA-256 of the manifest's bytes as verified, lowercase hex: the catalog pins it on the image
   * and in every launch grant, and a host refuses a manifest with another digest.
   */
  manifestDigest: z.string().regex(/^[0-9a-f]{64}$/),
  /** The key the manifest's signature verified with: the platform's signing key or the seller's. */
  signerKeyId: z.string().regex(/^sha256:[0-9a-f]{64}$/),
});
export type BundleVerified = z.infer<typeof bundleVerifiedSchema>;

export const bundleFailedSchema = z.object({
  imageId: imageIdSchema,
  /** A stable code (a BundleErrorCode or an upload check) and a reason the seller can read. */
  code: z.string().min(1).max(64),
  reason: z.string().min(1).max(1024),
});
export type BundleFailed = z.infer<typeof bundleFailedSchema>;

/**
 * A completed upload: the raw image is the concatenation of `parts` (object keys, in order), and
 * should be `size` bytes with SHA-256 `sha256`, as the seller declared. Like the bundling outcomes
 * it is a fact that happens once per upload; its consumer queues one bundle job per image, so a
 * second delivery is harmless. `image` is what the manifest says about the image (the bundle
 * job's schema validates it).
 */
export const uploadCompletedSchema = z.object({
  uploadId: z.string().regex(/^upl-[0-9a-f]{17}$/),
  imageId: imageIdSchema,
  ownerId: accountIdSchema,
  parts: z.array(z.string().min(1).max(1024)).min(1).max(10_000),
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  compression: z.enum(['zstd', 'gzip']),
  image: z.custom<BundleImageMetadata>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'must be an object'),
  /**
   * A bundle made on the seller's machine: `parts` are its parts, already at their place beside
   * the manifest's (`bundles/<imageId>/`); `size` and `sha256` are the original image's. The
   * consumer stores the manifest and verifies the bundle with the signer's key (no bundle job).
   */
  bundle: z
    .object({
      manifestXml: z.string().min(1).max(4 * 1024 * 1024),
      signerKeyId: z.string().min(1).max(128),
      signerPublicKeyPem: z.string().min(1).max(16_384),
    })
    .optional(),
});
export type UploadCompleted = z.infer<typeof uploadCompletedSchema>;

export const instanceIdSchema = z.string().regex(/^i-[0-9a-f]{17}$/, 'must be i- followed by 17 lowercase hex digits');
export const INSTANCE_STATES = ['pending', 'running', 'shutting-down', 'terminated'] as const;
export const instanceStateSchema = z.enum(INSTANCE_STATES);
export type InstanceState = z.infer<typeof instanceStateSchema>;

/**
 * The whole metering state of one instance. Usage runs from `runningAt` (the instance reached
 * `running`) to `stoppedAt` (it began shutting down, or was terminated before it ever ran, in
 * which case `runningAt` stays null and nothing is metered). Billing keeps the highest revision,
 * so a duplicate or an event that overtakes another is harmless, and an event that arrives late
 * still lands in the period its timestamps fall in.
 */
export const instanceChangedSchema = z.object({
  instanceId: instanceIdSchema,
  /** The account that launched the instance: the buyer billed for it. */
  accountId: accountIdSchema,
  imageId: imageIdSchema,
  /** The image's owner: the seller paid a markup, if the image is paid. */
  sellerId: accountIdSchema,
  /** The paid product the instance is billed under; null for a free image (base rate only). */
  productCode: productCodeSchema.nullable(),
  instanceType: z.string().min(1).max(32),
  state: instanceStateSchema,
  runningAt: z.string().datetime().nullable(),
  stoppedAt: z.string().datetime().nullable(),
  revision: z.number().int().min(1),
});
export type InstanceChanged = z.infer<typeof instanceChangedSchema>;

/** The payload schema of each event type, for the consumers' validation. */
export const DOMAIN_EVENT_SCHEMAS = {
  'catalog.image.changed': imageChangedSchema,
  'permission.launch-permission.changed': launchPermissionChangedSchema,
  'billing.subscription.changed': subscriptionChangedSchema,
  'bundling.bundle.verified': bundleVerifiedSchema,
  'bundling.bundle.failed': bundleFailedSchema,
  'catalog.upload.completed': uploadCompletedSchema,
  'catalog.instance.changed': instanceChangedSchema,
} as const satisfies Record<DomainEventType, z.ZodType>;

export type DomainEventPayload<T extends DomainEventType> = z.infer<(typeof DOMAIN_EVENT_SCHEMAS)[T]>;
