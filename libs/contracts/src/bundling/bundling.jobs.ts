import { z } from 'zod';
import { MANIFEST_FILENAME, manifestTextProblem } from '../common/names.js';
import { imageIdSchema, productCodeSchema } from '../events/domain-events.js';
import { accountIdSchema } from '../permission/permission.schemas.js';

/**
 * Jobs of the bundling queue (`QueueName.bundling`), processed by bundler-worker. Do not rename a
 * job name without a migration plan: jobs already waiting under the old name would never run.
 */
export const BundlingJobName = {
  /** Turns a raw image in the object store into a signed bundle (parts + manifest), then queues `verify`. */
  bundle: 'bundle',
  /** Reads a bundle back, proves it, and publishes `bundling.bundle.verified` or `bundling.bundle.failed`. */
  verify: 'verify',
  /** Deletes an image's bundle (parts and manifest); idempotent. */
  delete: 'delete',
} as const;
export type BundlingJobName = (typeof BundlingJobName)[keyof typeof BundlingJobName];

/**
 * The deterministic job id of a bundling job: one job per image and kind, so a producer that adds
 * the same job twice (a retried request, a relay that delivers twice) queues it once.
 * BullMQ refuses custom ids with a single `:`, hence `-`: `bundle-ami-0123456789abcdef0`.
 */
export const bundlingJobId = (name: BundlingJobName, imageId: string): string => `${name}-${imageId}`;

/**
 * Where an image's bundle lives in the object store: everything under one prefix, the manifest
 * and its parts side by side, so deleting the prefix deletes the bundle.
 */
export const BundleKeys = {
  prefix: (imageId: string) => `bundles/${imageId}/`,
  manifest: (imageId: string) => `bundles/${imageId}/${MANIFEST_FILENAME}`,
  /** A part's key: the manifest's directory and the part's file name from the manifest. */
  part: (manifestKey: string, filename: string) =>
    `${manifestKey.slice(0, manifestKey.lastIndexOf('/') + 1)}${filename}`,
} as const;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (SHA-256)');
/** An object key (the object store's rules: `/`-separated `[A-Za-z0-9._-]` segments). */
const objectKeySchema = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'must be an object key: /-separated segments of [A-Za-z0-9._-]')
  .refine((key) => key.split('/').every((s) => s !== '.' && s !== '..'), 'must not hold . or .. segments');
const shortId = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 of A-Z a-z 0-9 . _ -');
/** Text of the manifest: the format's rule (manifestTextProblem: XML characters only, no control characters, no white space around). */
const manifestText = (max: number) =>
  z.string().superRefine((s, ctx) => {
    const problem = manifestTextProblem(s, max);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

export const BUNDLE_COMPRESSIONS = ['zstd', 'gzip'] as const;
export const BUNDLE_ARCHITECTURES = ['i386', 'x86_64', 'arm64'] as const;
export const BUNDLE_VIRTUALIZATION_TYPES = ['hvm', 'paravirtual'] as const;

/** What the manifest says about the image (the bundle format's `image` and `machine_configuration`). */
export const bundleImageMetadataSchema = z.strictObject({
  name: manifestText(128),
  /** The seller's version of the image. */
  version: manifestText(64).optional(),
  description: manifestText(255).optional(),
  architecture: z.enum(BUNDLE_ARCHITECTURES),
  virtualizationType: z.enum(BUNDLE_VIRTUALIZATION_TYPES).optional(),
  /** e.g. `aki-12345678` */
  kernelId: shortId.optional(),
  ramdiskId: shortId.optional(),
  blockDeviceMapping: z
    .array(
      z.strictObject({
        /** `ami`, `root`, `swap`, `ephemeral0`, … */
        virtual: shortId,
        /** `sda1`, `/dev/xvda`, … */
        device: z.string().regex(/^[A-Za-z0-9._/-]{1,64}$/, 'must be 1-64 of A-Z a-z 0-9 . _ / -'),
      }),
    )
    .max(64)
    .default([]),
  productCodes: z
    .array(productCodeSchema)
    .max(32)
    .refine((codes) => new Set(codes).size === codes.length, 'product codes must be distinct')
    .default([]),
});
export type BundleImageMetadata = z.infer<typeof bundleImageMetadataSchema>;

/**
 * `bundle`: what an upload hands over once the raw image is stored. The worker checks the
 * declared size and SHA-256 against what it reads; a mismatch fails the image for good.
 */
export const bundleJobSchema = z.strictObject({
  imageId: imageIdSchema,
  /** The account that owns the image: the manifest's `image/user`. */
  ownerId: accountIdSchema,
  /**
   * Where the raw image is: one object (`key`), or the objects of a resumable upload (`parts`),
   * read in the order given as one stream.
   */
  source: z.union([
    z.strictObject({
      /** The raw image as an object in the ObjectStore. */
      key: objectKeySchema,
      /** Delete the raw image once its bundle is stored (default: keep it; its owner removes it). */
      deleteWhenBundled: z.boolean().default(false),
    }),
    z.strictObject({
      /** The raw image as the concatenation of these objects, in this order (an upload's parts). */
      parts: z
        .array(objectKeySchema)
        .min(1)
        .max(10_000)
        .refine((keys) => new Set(keys).size === keys.length, 'parts must be distinct'),
      /**
       * Delete the parts once the bundle is stored, and also when the job fails for good (they
       * can never become this image's bundle then).
       */
      deleteWhenBundled: z.boolean().default(false),
    }),
  ]),
  /** Bytes of the raw image, as the uploader declared them. */
  declaredSize: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** SHA-256 of the raw image, as the uploader declared it, lowercase hex. */
  declaredSha256: hex64,
  compression: z.enum(BUNDLE_COMPRESSIONS).default('zstd'),
  image: bundleImageMetadataSchema,
  /** Correlation id of the request that queued the job; carried into the worker's logs. */
  requestId: z.string().min(1).max(128).optional(),
});
export type BundleJobData = z.input<typeof bundleJobSchema>;
/** The objects a bundle job's source is made of, in order. */
export const bundleSourceKeys = (source: BundleJob['source']): string[] => ('parts' in source ? source.parts : [source.key]);
export type BundleJob = z.output<typeof bundleJobSchema>;

/**
 * `verify`: proves a stored bundle. The bundle job queues it for the bundles it writes; an upload
 * of a bundle made on a seller's machine queues it with the seller's registered public key.
 */
export const verifyJobSchema = z.strictObject({
  imageId: imageIdSchema,
  /** Object key of the manifest; parts are found beside it, by the file names it lists. */
  manifestKey: objectKeySchema,
  /** PEM (SPKI) of the key the manifest must be signed with; absent: the platform's signing key. */
  signerPublicKeyPem: z.string().min(1).max(16_384).optional(),
  /**
   * With `signerPublicKeyPem`: the account whose registered signing key it is. The job asks the
   * permission service whether the key is still active before it verifies (a revoked key fails the
   * image with `SigningKeyRevoked`); absent, the manifest's `image/user` names the account.
   */
  signerAccountId: z.string().regex(/^\d{12}$/).optional(),
  /** When given, the manifest must also declare exactly this image (size and SHA-256). */
  expected: z.strictObject({ size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), sha256: hex64 }).optional(),
  requestId: z.string().min(1).max(128).optional(),
});
export type VerifyJobData = z.input<typeof verifyJobSchema>;
export type VerifyJob = z.output<typeof verifyJobSchema>;

/** `delete`: removes the image's bundle (everything under `BundleKeys.prefix(imageId)`). */
export const deleteJobSchema = z.strictObject({
  imageId: imageIdSchema,
  requestId: z.string().min(1).max(128).optional(),
});
export type DeleteJobData = z.input<typeof deleteJobSchema>;
export type DeleteJob = z.output<typeof deleteJobSchema>;

export const BUNDLING_JOB_SCHEMAS = {
  bundle: bundleJobSchema,
  verify: verifyJobSchema,
  delete: deleteJobSchema,
} as const satisfies Record<BundlingJobName, z.ZodType>;

export type BundlingJobData<N extends BundlingJobName> = z.input<(typeof BUNDLING_JOB_SCHEMAS)[N]>;

export const BUNDLING_PHASES = ['reading', 'bundling', 'storing-manifest', 'verifying', 'deleting', 'done'] as const;
export type BundlingPhase = (typeof BUNDLING_PHASES)[number];

/** A bundling job's progress (`job.progress`), updated at least once per part. */
export interface BundlingProgress {
  phase: BundlingPhase;
  /** Bytes of the raw image read (bundle) or restored (verify) so far. */
  bytesDone: number;
  bytesTotal: number;
  /** 0-100, whole numbers. */
  percent: number;
}

/**
 * Codes of `bundling.bundle.failed` besides the bundle format's own (`BundleErrorCode`:
 * DigestMismatch, SignatureInvalid, ManifestMalformed, …).
 */
export const BundlingFailureCode = {
  /** The job's payload does not match its schema. */
  InvalidJob: 'InvalidJob',
  /** The raw image is not in the object store. */
  SourceMissing: 'SourceMissing',
  /** The raw image has another size than the upload declared. */
  SourceSizeMismatch: 'SourceSizeMismatch',
  /** The raw image has another SHA-256 than the upload declared. */
  SourceDigestMismatch: 'SourceDigestMismatch',
  /** The manifest to verify is not in the object store. */
  ManifestMissing: 'ManifestMissing',
  /** The bundle is sound but not the image that was expected (size or SHA-256). */
  UnexpectedImage: 'UnexpectedImage',
  /** A seller-made bundle signed with a key its seller revoked (or that is no longer registered). */
  SigningKeyRevoked: 'SigningKeyRevoked',
  /** Every attempt failed on something that may pass (storage unreachable, a crash): see the job's error. */
  AttemptsExhausted: 'AttemptsExhausted',
} as const;
export type BundlingFailureCode = (typeof BundlingFailureCode)[keyof typeof BundlingFailureCode];
