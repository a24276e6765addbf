/**
 * Request patterns of the catalog's resumable uploads. Every one takes the `caller`: only the
 * account that created an upload sees or changes it (any other gets 404 InvalidUploadID.NotFound).
 */
export const CatalogUploadPattern = {
  /** A seller registers an image (pending) and opens its upload: `UploadView`. Idempotent per request id. */
  uploadCreate: 'catalog.upload.create',
  /** The upload with its stored parts and the numbers still missing: `UploadView`. */
  uploadGet: 'catalog.upload.get',
  /**
   * The gateway stored a part (`uploads/<uploadId>/part-<n>`) and records its size and SHA-256:
   * `UploadPartView`. Recording a part again replaces it. Only while the upload is open.
   */
  uploadRecordPart: 'catalog.upload.record-part',
  /**
   * Every part is there and the sizes add up: the upload is complete and, in the same transaction,
   * `catalog.upload.completed` goes to the bundler. Completing again answers the same: `UploadView`.
   */
  uploadComplete: 'catalog.upload.complete',
  /** Aborts an open upload and deregisters its image; aborting again answers the same: `UploadView`. */
  uploadAbort: 'catalog.upload.abort',
} as const;
export type CatalogUploadPattern = (typeof CatalogUploadPattern)[keyof typeof CatalogUploadPattern];
