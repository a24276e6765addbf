import { z } from 'zod';
import { BUNDLE_COMPRESSIONS, type BundlingPhase } from '../bundling/bundling.jobs.js';
import { PART_FILENAME_RULE, partFilenameProblem } from '../common/names.js';
import type { ImageState } from '../events/domain-events.js';
import { callerSchema } from '../permission/permission.schemas.js';
import { registerImageBodySchema, type RegisterImageBody, type StateReason } from './catalog.schemas.js';

// Sizes and object keys ------------------------------------------------------------------------

const MiB = 1024 * 1024;
/** The part size of a new upload unless configured (`UPLOAD_PART_SIZE_BYTES`): every part but the last. */
export const DEFAULT_UPLOAD_PART_SIZE = 64 * MiB;
export const MIN_UPLOAD_PART_SIZE = 64 * 1024;
export const MAX_UPLOAD_PART_SIZE = 1024 * MiB;
/** Parts of one upload at most (S3's limit for a multipart upload). */
export const MAX_UPLOAD_PARTS = 10_000;
/** The largest raw image an upload declares: 5 TiB, the largest S3 object. */
export const MAX_UPLOAD_BYTES = 5 * 1024 * 1024 * MiB;

/** Where an upload's parts live in the object store: everything under one prefix. */
export const UploadKeys = {
  prefix: (uploadId: string) => `uploads/${uploadId}/`,
  part: (uploadId: string, partNumber: number) => `uploads/${uploadId}/part-${partNumber}`,
} as const;

/** How many parts an image of `size` bytes takes: at least one (an empty image is one empty part). */
export const uploadPartCount = (size: number, partSize: number): number => Math.max(1, Math.ceil(size / partSize));

/** The exact size of part `partNumber` (1-based): `partSize`, except the last, which holds the rest. */
export function uploadPartSize(upload: { size: number; partSize: number; partCount: number }, partNumber: number): number {
  return partNumber < upload.partCount ? upload.partSize : upload.size - upload.partSize * (upload.partCount - 1);
}

// Identifiers ----------------------------------------------------------------------------------

export const uploadIdSchema = z.string().regex(/^upl-[0-9a-f]{17}$/, 'must be upl- followed by 17 lowercase hex digits');
export const sha256HexSchema = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits (a SHA-256)')
  .transform((s) => s.toLowerCase());
/** A part number as a path parameter: 1 … 10000. */
export const uploadPartNumberParamSchema = z
  .string()
  .regex(/^[1-9][0-9]{0,4}$/, 'must be a whole number from 1')
  .transform(Number)
  .pipe(z.number().int().min(1).max(MAX_UPLOAD_PARTS));

/** A bundle part's file name: one object key segment, not the manifest's own name (the format's rule). */
export const partFilenameSchema = z.string().superRefine((name, ctx) => {
  const problem = partFilenameProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: `${problem}: a part name is ${PART_FILENAME_RULE}` });
});

// Requests -------------------------------------------------------------------------------------

const { sourceImageId: _notForUploads, ...imageFields } = registerImageBodySchema.shape;

/** The image fields of an upload body: what `POST /v1/images` registers. */
export function uploadImageBody(body: CreateUploadBody): RegisterImageBody {
  const { size: _size, sha256: _sha256, compression: _compression, ...image } = body;
  return image;
}

/**
 * `POST /v1/uploads`: the image's registration (the fields and rules of `POST /v1/images`, but
 * for `sourceImageId`) and what the seller declares about the raw image he is about to upload.
 */
export const createUploadBodySchema = z
  .strictObject({
    ...imageFields,
    /** Bytes of the raw image. */
    size: z.number().int().min(1).max(MAX_UPLOAD_BYTES),
    /** SHA-256 of the raw image, hex; the bundler checks it and fails the image when it differs. */
    sha256: sha256HexSchema,
    /** How the bundle is compressed: zstd (default) or gzip. */
    compression: z.enum(BUNDLE_COMPRESSIONS).default('zstd'),
  })
  .superRefine((body, ctx) => {
    // The cross-field rules of a registration (root device, kernel of hvm images, …).
    const image = registerImageBodySchema.safeParse(uploadImageBody(body));
    if (!image.success) {
      for (const issue of image.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    }
  });
export type CreateUploadBody = z.infer<typeof createUploadBodySchema>;

/** The manifest of a seller-made bundle, at most 4 MiB (the bundle format's limit). */
export const MAX_MANIFEST_BYTES = 4 * MiB;

/**
 * `POST /v1/uploads` with `kind: "bundle"`: a bundle made on the seller's machine (`imagemart
 * bundle`). The image is registered from the manifest (name, version, description, architecture,
 * virtualization type, kernel and ramdisk ids, the root device of its block device mapping,
 * product codes); the parts to put are the manifest's, in order.
 */
export const createBundleUploadBodySchema = z.strictObject({
  kind: z.literal('bundle'),
  /** The manifest XML, signed with one of the uploading account's signing keys. */
  manifest: z.string().min(1).max(MAX_MANIFEST_BYTES),
  platform: imageFields.platform,
  listingId: imageFields.listingId,
});
export type CreateBundleUploadBody = z.infer<typeof createBundleUploadBodySchema>;

/**
 * What the gateway found in a seller-made bundle's manifest after checking its signature, for the
 * catalog to keep with the upload: the parts (as the manifest names them) are put beside the
 * manifest's final place, and the verify job checks the bundle with the signer's key.
 */
export const uploadBundleSchema = z.strictObject({
  manifestXml: z.string().min(1).max(MAX_MANIFEST_BYTES),
  signerKeyId: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  signerPublicKeyPem: z.string().min(1).max(16_384),
  /** The manifest's part size: every part but the last. */
  partSize: z.number().int().min(256).max(64 * MiB),
  /**
   * File names of the parts, by index (part number − 1): the bundle format's part names, which
   * are the object store's key segments (partFilenameProblem), each stored beside the manifest.
   */
  partFilenames: z
    .array(partFilenameSchema)
    .min(1)
    .max(MAX_UPLOAD_PARTS)
    .refine((names) => new Set(names.map((n) => n.toLowerCase())).size === names.length, 'part file names must be distinct'),
  /** Bytes and SHA-256 of the original image, as the manifest declares them. */
  imageSize: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});
export type UploadBundle = z.infer<typeof uploadBundleSchema>;

/** `bundle`: a seller-made bundle's upload (the `upload` body then declares the bundled size and the image's SHA-256). */
export const createUploadRequestSchema = z.strictObject({
  caller: callerSchema,
  upload: createUploadBodySchema,
  bundle: uploadBundleSchema.optional(),
});
export type CreateUploadRequest = z.infer<typeof createUploadRequestSchema>;

/** get, complete and abort. */
export const uploadRequestSchema = z.strictObject({ caller: callerSchema, uploadId: uploadIdSchema });
export type UploadRequest = z.infer<typeof uploadRequestSchema>;

export const recordUploadPartRequestSchema = z.strictObject({
  caller: callerSchema,
  uploadId: uploadIdSchema,
  partNumber: z.number().int().min(1).max(MAX_UPLOAD_PARTS),
  size: z.number().int().min(0).max(MAX_UPLOAD_PART_SIZE),
  sha256: sha256HexSchema,
});
export type RecordUploadPartRequest = z.infer<typeof recordUploadPartRequestSchema>;

// Responses ------------------------------------------------------------------------------------

export const UPLOAD_STATES = ['open', 'complete', 'aborted'] as const;
export type UploadState = (typeof UPLOAD_STATES)[number];

export interface UploadPartView {
  partNumber: number;
  size: number;
  sha256: string;
}

export interface UploadView {
  uploadId: string;
  imageId: string;
  /** raw: a raw image the platform bundles; bundle: parts and manifest of a bundle made by the seller. */
  kind: 'raw' | 'bundle';
  /** open: parts may be put; complete: handed to the bundler; aborted: parts removed, image deregistered. */
  state: UploadState;
  /** Declared bytes of the raw image (raw), or of all the bundle's parts (bundle); SHA-256 of the raw image. */
  size: number;
  sha256: string;
  compression: (typeof BUNDLE_COMPRESSIONS)[number];
  /** Bytes of every part but the last, which holds the rest. */
  partSize: number;
  partCount: number;
  /** The parts stored so far, by number. */
  parts: UploadPartView[];
  /** Part numbers not stored yet, ascending: a client resumes at the first. */
  missing: number[];
  createdAt: string;
  completedAt: string | null;
  abortedAt: string | null;
  /** A seller-made bundle: the signing key of its manifest, the image's size and the parts' file names by number − 1. */
  bundle: { signerKeyId: string; imageSize: number; partFilenames: string[] } | null;
}

/** `waiting`: the image is pending and no bundling job has started yet (the upload is open, or just completed). */
export type BundleProgressPhase = 'waiting' | BundlingPhase;

/** `GET /v1/images/{imageId}/bundle`: how far publishing the image has come. */
export interface BundleProgressView {
  imageId: string;
  /** The image's state in the catalog: available only once its bundle is verified. */
  state: ImageState;
  phase: BundleProgressPhase;
  /** Bytes of the raw image read (bundling) or restored (verifying) in the current phase. */
  bytesDone: number;
  bytesTotal: number;
  /** 0-100 over the whole flow: bundling is the first half, verifying the second. */
  percent: number;
  /** Why the image failed, for a failed image. */
  reason: StateReason | null;
}
