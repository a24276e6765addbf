import { BundleKeys, type UploadCompleted, type VerifyJobData } from '@imagemart/contracts';
import type { ObjectStore } from '@imagemart/object-store';

/**
 * A completed upload of a bundle made on the seller's machine: its parts are already beside the
 * manifest's place (`bundles/<imageId>/`), put there by the gateway. Stores the manifest, last,
 * as the bundle job does (a visible manifest always has its parts), and returns the verify job
 * that checks the bundle with the seller's key. Putting the manifest again is harmless (an event
 * delivered twice): the same bytes.
 */
export async function storeSellerManifest(
  store: ObjectStore,
  upload: UploadCompleted,
  requestId?: string,
): Promise<VerifyJobData> {
  if (!upload.bundle) throw new Error(`upload ${upload.uploadId} is not a seller-made bundle`);
  const manifestKey = BundleKeys.manifest(upload.imageId);
  const xml = Buffer.from(upload.bundle.manifestXml, 'utf8');
  await store.put(manifestKey, xml, { contentLength: xml.length, contentType: 'application/xml' });
  return {
    imageId: upload.imageId,
    manifestKey,
    signerPublicKeyPem: upload.bundle.signerPublicKeyPem,
    signerAccountId: upload.ownerId,
    expected: { size: upload.size, sha256: upload.sha256 },
    ...(requestId ? { requestId: requestId.slice(0, 128) } : {}),
  };
}
