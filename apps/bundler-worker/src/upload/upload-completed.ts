import type { BundleJobData, UploadCompleted } from '@imagemart/contracts';

/**
 * The bundle job of a completed upload: its parts, read in order as one stream, are the raw
 * image; they are removed once the bundle is stored (or the job fails for good), so a finished
 * upload leaves nothing behind.
 */
export function bundleJobForUpload(upload: UploadCompleted, requestId?: string): BundleJobData {
  return {
    imageId: upload.imageId,
    ownerId: upload.ownerId,
    source: { parts: upload.parts, deleteWhenBundled: true },
    declaredSize: upload.size,
    declaredSha256: upload.sha256,
    compression: upload.compression,
    image: upload.image,
    ...(requestId ? { requestId: requestId.slice(0, 128) } : {}),
  };
}
