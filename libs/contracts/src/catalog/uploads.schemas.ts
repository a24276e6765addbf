import { z } from 'zod';
import { BUNDLE_COMPRESSIONS, type BundlingPhase } from '../bundling/bundling.jobs.js';
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

export const createUploadRequestSchema = z.strictObject({ caller: callerSchema, upload: createUploadBodySchema });
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
  /** open: parts may be put; complete: handed to the bundler; aborted: parts removed, image deregistered. */
  state: UploadState;
  /** Declared bytes and SHA-256 of the raw image. */
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
