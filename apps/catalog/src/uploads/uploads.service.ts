import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG } from '@imagemart/config';
import { PrismaClient, UniqueViolation, publishDomainEvent, type CatalogUpload, type CatalogUploadPart } from '@imagemart/database';
import {
  BundleKeys,
  DomainEventType,
  ErrorCode,
  MAX_UPLOAD_PARTS,
  UploadKeys,
  uploadImageBody,
  uploadPartCount,
  uploadPartSize,
  type Caller,
  type CreateUploadBody,
  type RecordUploadPartRequest,
  type UploadBundle,
  type UploadCompleted,
  type UploadPartView,
  type UploadState,
  type UploadView,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import type { CatalogConfig } from '../catalog.config.js';
import { newResourceId } from '../ids.js';
import { ImagesRepository } from '../images/images.repository.js';
import { ImagesService } from '../images/images.service.js';
import { toBundleImageMetadata } from './bundle-metadata.js';
import { SigningKeysClient } from './signing-keys.client.js';
import { newUploadId } from './upload-id.js';
import { UploadsRepository } from './uploads.repository.js';

const uploadNotFound = (uploadId: string) =>
  new DomainException(ErrorCode.InvalidUploadIDNotFound, `The upload id '${uploadId}' does not exist.`);

/** State reason codes of what the expiry ends. */
export const ExpiryReason = {
  upload: 'Upload.Expired',
  image: 'Image.Expired',
} as const;

/** Uploads, and pending images, one sweep ends at most. */
const EXPIRY_BATCH = 100;

const incorrectState = (detail: string) => new DomainException(ErrorCode.IncorrectState, detail);

interface UploadNumbers {
  size: number;
  partSize: number;
  partCount: number;
}

const numbersOf = (upload: CatalogUpload): UploadNumbers => ({
  size: Number(upload.size),
  partSize: upload.partSize,
  partCount: upload.partCount,
});

/** Part numbers with no stored part of the right size, ascending. */
function missingParts(upload: CatalogUpload, parts: readonly CatalogUploadPart[]): number[] {
  const numbers = numbersOf(upload);
  const stored = new Map(parts.map((p) => [p.partNumber, p.size]));
  const missing: number[] = [];
  for (let n = 1; n <= upload.partCount; n++) {
    if (stored.get(n) !== uploadPartSize(numbers, n)) missing.push(n);
  }
  return missing;
}

function toPartView(part: CatalogUploadPart): UploadPartView {
  return { partNumber: part.partNumber, size: part.size, sha256: part.sha256 };
}

function toUploadView(upload: CatalogUpload, parts: readonly CatalogUploadPart[]): UploadView {
  const bundle = UploadsRepository.bundleOf(upload);
  return {
    uploadId: upload.id,
    imageId: upload.imageId,
    kind: bundle ? 'bundle' : 'raw',
    state: upload.state as UploadState,
    size: Number(upload.size),
    sha256: upload.sha256,
    compression: upload.compression as UploadView['compression'],
    partSize: upload.partSize,
    partCount: upload.partCount,
    parts: parts.map(toPartView),
    missing: upload.state === 'open' ? missingParts(upload, parts) : [],
    createdAt: upload.createdAt.toISOString(),
    completedAt: upload.completedAt?.toISOString() ?? null,
    abortedAt: upload.abortedAt?.toISOString() ?? null,
    bundle: bundle ? { signerKeyId: bundle.signerKeyId, imageSize: bundle.imageSize, partFilenames: bundle.partFilenames } : null,
  };
}

/** A short list of part numbers for a sentence: `1, 2, 3 and 7 more`. */
function listNumbers(numbers: readonly number[], max = 10): string {
  const shown = numbers.slice(0, max).join(', ');
  return numbers.length > max ? `${shown} and ${numbers.length - max} more` : shown;
}

/**
 * Resumable uploads of raw images. The gateway streams each part into the object store and
 * records it here; completing the upload hands the parts to the bundler through the outbox, in
 * the transaction that marks it complete. Only the account that created an upload sees it.
 */
@Injectable()
export class UploadsService {
  private readonly logger = new Logger(UploadsService.name);

  constructor(
    private readonly prisma: PrismaClient,
    private readonly uploads: UploadsRepository,
    private readonly images: ImagesService,
    private readonly imageRecords: ImagesRepository,
    private readonly signingKeys: SigningKeysClient,
    @Inject(APP_CONFIG) private readonly config: CatalogConfig,
  ) {}

  /**
   * Registers the image (pending; the registration's rules and errors) and opens its upload.
   * Idempotent: a request that runs again finds the image and the upload of its first run.
   * With `bundle` (a bundle made on the seller's machine, its manifest checked by the gateway),
   * the parts are the manifest's: its part size and count, `size` its bundled size.
   */
  async create(caller: Caller, body: CreateUploadBody, bundle?: UploadBundle): Promise<UploadView> {
    if (!caller.roles.includes('seller')) {
      throw new DomainException(ErrorCode.UnauthorizedOperation, 'Only seller accounts upload images.');
    }
    const partSize = bundle?.partSize ?? this.config.UPLOAD_PART_SIZE_BYTES;
    const partCount = uploadPartCount(body.size, partSize);
    if (bundle && partCount !== bundle.partFilenames.length) {
      throw new DomainException(
        ErrorCode.InvalidParameterValue,
        `A bundle of ${body.size} bytes in parts of ${partSize} has ${partCount} parts, not ${bundle.partFilenames.length}.`,
      );
    }
    if (partCount > MAX_UPLOAD_PARTS) {
      throw new DomainException(
        ErrorCode.InvalidParameterValue,
        `An upload has at most ${MAX_UPLOAD_PARTS} parts of ${partSize} bytes: ${body.size} bytes is too large.`,
        [{ path: 'size', message: `must be at most ${MAX_UPLOAD_PARTS * partSize}` }],
      );
    }
    // The seller's open uploads, checked before anything is registered (the same request run
    // again finds its own upload instead), and again under the seller's quota lock below.
    const replayed = await this.uploads.findByImageId(newResourceId('ami', caller.accountId, body.name));
    if (replayed?.ownerId === caller.accountId && replayed.state !== 'aborted') return this.viewOf(replayed);
    this.checkUploadLimits(await this.uploads.openTotals(caller.accountId), body.size);

    const image = await this.images.register(caller, uploadImageBody(body));
    const earlier = await this.uploads.findByImageId(image.imageId);
    if (earlier) return this.viewOf(earlier);
    try {
      const upload = await this.prisma.$transaction(async (tx) => {
        await this.imageRecords.lockSellerQuota(caller.accountId, tx);
        this.checkUploadLimits(await this.uploads.openTotals(caller.accountId, tx), body.size);
        return this.uploads.create(
          {
            id: newUploadId(image.imageId),
            imageId: image.imageId,
            ownerId: caller.accountId,
            size: BigInt(body.size),
            sha256: body.sha256,
            compression: body.compression,
            partSize,
            partCount,
            ...(bundle ? { bundle } : {}),
          },
          tx,
        );
      });
      return toUploadView(upload, []);
    } catch (err) {
      if (err instanceof UniqueViolation) {
        // The same request running twice at once: the other run created it.
        const other = await this.uploads.findByImageId(image.imageId);
        if (other) return this.viewOf(other);
      }
      // Compensation: no pending image without an upload to fill it.
      await this.images
        .setState({ imageId: image.imageId, state: 'deregistered' })
        .catch((undo: unknown) => this.logger.error(`could not deregister ${image.imageId} after a failed upload: ${String(undo)}`));
      throw err;
    }
  }

  async get(caller: Caller, uploadId: string): Promise<UploadView> {
    return this.viewOf(await this.owned(caller, uploadId));
  }

  /** Records a part the gateway stored; recording one again replaces it. The upload must be open. */
  async recordPart(caller: Caller, req: Omit<RecordUploadPartRequest, 'caller'>): Promise<UploadPartView> {
    return this.prisma.$transaction(async (tx) => {
      const upload = this.ownedOrThrow(caller, req.uploadId, await this.uploads.lock(req.uploadId, tx));
      if (upload.state !== 'open') throw incorrectState(`The upload '${upload.id}' is ${upload.state}: it takes no more parts.`);
      this.checkPart(upload, req.partNumber, req.size);
      return toPartView(await this.uploads.putPart({ ...req, uploadId: upload.id }, tx));
    });
  }

  /**
   * Every part stored, of the right size: the upload becomes complete and `catalog.upload.completed`
   * (the parts in order, the declared size and SHA-256, the manifest's image metadata) is written
   * to the outbox in the same transaction. Completing a complete upload answers the same.
   */
  async complete(caller: Caller, uploadId: string): Promise<UploadView> {
    const first = await this.owned(caller, uploadId);
    if (first.state === 'complete') return this.viewOf(first);
    // A seller-made bundle: the key that signed its manifest must still be the seller's active
    // key now (it was when the upload was opened; a revoke since stops it). The bundler checks
    // again before it verifies.
    const signed = UploadsRepository.bundleOf(first);
    if (signed && first.state === 'open') await this.checkSigningKey(first.ownerId, signed.signerKeyId);
    // The image's fields do not change while it is pending (its description aside, read here).
    const image = await this.images.get(caller, first.imageId);
    const done = await this.prisma.$transaction(async (tx) => {
      const upload = this.ownedOrThrow(caller, uploadId, await this.uploads.lock(uploadId, tx));
      if (upload.state === 'complete') return upload;
      if (upload.state === 'aborted') throw incorrectState(`The upload '${upload.id}' was aborted.`);
      if (image.state !== 'pending') {
        throw incorrectState(`The image '${image.imageId}' of this upload is ${image.state}: abort the upload.`);
      }
      const parts = await this.uploads.parts(upload.id, tx);
      const missing = missingParts(upload, parts);
      const total = parts.reduce((sum, p) => sum + p.size, 0);
      if (missing.length > 0 || total !== Number(upload.size)) {
        throw new DomainException(
          ErrorCode.InvalidParameterValue,
          `The upload is not complete: ${missing.length} of ${upload.partCount} parts are missing (${listNumbers(missing)}); ` +
            `${total} of ${upload.size} bytes are stored.`,
          missing.slice(0, 100).map((n) => ({ path: 'parts', message: `part ${n} is missing` })),
        );
      }
      const completed = await this.uploads.update(upload.id, { state: 'complete', completedAt: new Date() }, tx);
      const bundle = UploadsRepository.bundleOf(upload);
      const payload: UploadCompleted = {
        uploadId: upload.id,
        imageId: upload.imageId,
        ownerId: upload.ownerId,
        parts: bundle
          ? bundle.partFilenames.map((f) => BundleKeys.part(BundleKeys.manifest(upload.imageId), f))
          : parts.map((p) => UploadKeys.part(upload.id, p.partNumber)),
        // A seller-made bundle: the original image's size (the upload's is the parts' total).
        size: bundle ? bundle.imageSize : Number(upload.size),
        sha256: upload.sha256,
        compression: upload.compression as UploadCompleted['compression'],
        image: toBundleImageMetadata(image),
        ...(bundle
          ? { bundle: { manifestXml: bundle.manifestXml, signerKeyId: bundle.signerKeyId, signerPublicKeyPem: bundle.signerPublicKeyPem } }
          : {}),
      };
      const requestId = requestContext.requestId();
      await publishDomainEvent(tx, 'catalog', {
        type: DomainEventType.uploadCompleted,
        payload,
        ...(requestId ? { requestId } : {}),
      });
      return completed;
    });
    return this.viewOf(done);
  }

  /**
   * Aborts an open upload: it takes no more parts, its part records go, and its image is
   * deregistered (which frees the image's name). The gateway removes the stored parts. Aborting
   * again answers the same; a complete upload cannot be aborted (deregister its image instead).
   */
  async abort(caller: Caller, uploadId: string): Promise<UploadView> {
    const upload = await this.prisma.$transaction(async (tx) => {
      const locked = this.ownedOrThrow(caller, uploadId, await this.uploads.lock(uploadId, tx));
      if (locked.state === 'aborted') return locked;
      if (locked.state === 'complete') {
        throw incorrectState(`The upload '${locked.id}' is complete and its image is being published: deregister the image instead.`);
      }
      await this.uploads.deleteParts(locked.id, tx);
      return this.uploads.update(locked.id, { state: 'aborted', abortedAt: new Date() }, tx);
    });
    // After the commit, and again on a repeated abort: deregistering is idempotent.
    await this.images.setState({ imageId: upload.imageId, state: 'deregistered' });
    return toUploadView(upload, []);
  }

  // Expiry ----------------------------------------------------------------------------------------

  /**
   * Ends what has made no progress for UPLOAD_EXPIRY_MS: an open upload with no part stored since
   * is aborted, its part records dropped and its stored parts deleted (`removeParts`), and its
   * image marked failed (`Upload.Expired`); a pending image that got no bundle since (no upload
   * open or complete) is marked failed (`Image.Expired`). Every catalog process runs it; each
   * upload and image is taken with SKIP LOCKED and its rule checked again under the lock, so
   * replicas share the work and never end one twice.
   */
  async expireStale(removeParts: (upload: CatalogUpload) => Promise<void>, now = new Date()): Promise<{ uploads: number; images: number }> {
    const cutoff = new Date(now.getTime() - this.config.UPLOAD_EXPIRY_MS);
    const hours = Math.round((this.config.UPLOAD_EXPIRY_MS / 3_600_000) * 10) / 10;
    let uploads = 0;
    for (const id of await this.uploads.staleOpen(cutoff, EXPIRY_BATCH)) {
      // The upload and then its image, in one transaction: the image sweep below (here or in
      // another replica) never finds the image pending without its open upload meanwhile.
      const expired = await this.prisma.$transaction(async (tx) => {
        const upload = await this.uploads.lockIfStale(id, cutoff, tx);
        if (!upload) return null;
        await this.uploads.deleteParts(upload.id, tx);
        const aborted = await this.uploads.update(upload.id, { state: 'aborted', abortedAt: now }, tx);
        const reason = { code: ExpiryReason.upload, message: `The upload ${upload.id} stored no part for ${hours} hours and was aborted.` };
        return { upload: aborted, change: await this.images.failPendingWithin(tx, upload.imageId, reason) };
      });
      if (!expired) continue;
      uploads++;
      this.logger.log({ msg: 'open upload expired: aborted', uploadId: expired.upload.id, imageId: expired.upload.imageId });
      if (expired.change) await this.images.listsChanged(expired.change);
      try {
        await removeParts(expired.upload);
      } catch (err) {
        this.logger.error({ msg: 'could not delete the parts of an expired upload', uploadId: expired.upload.id, err: (err as Error).message });
      }
    }
    let images = 0;
    for (const imageId of await this.imageRecords.stalePending(cutoff, EXPIRY_BATCH)) {
      const reason = { code: ExpiryReason.image, message: `No bundle arrived for this image within ${hours} hours of its last change.` };
      if (await this.images.expirePending(imageId, cutoff, reason)) {
        images++;
        this.logger.log({ msg: 'pending image expired: failed', imageId });
      }
    }
    return { uploads, images };
  }

  // Helpers ---------------------------------------------------------------------------------------

  /** 400 UploadLimitExceeded when one more upload of `size` bytes passes a seller limit. */
  private checkUploadLimits(open: { uploads: number; bytes: number }, size: number): void {
    const c = this.config;
    if (open.uploads >= c.SELLER_OPEN_UPLOAD_LIMIT) {
      throw new DomainException(
        ErrorCode.UploadLimitExceeded,
        `You have ${open.uploads} open uploads, the most a seller may have at once (${c.SELLER_OPEN_UPLOAD_LIMIT}): complete or abort one first.`,
      );
    }
    if (open.bytes + size > c.SELLER_OPEN_UPLOAD_BYTES_LIMIT) {
      throw new DomainException(
        ErrorCode.UploadLimitExceeded,
        `Your open uploads declare ${open.bytes} bytes; ${size} more would pass the ${c.SELLER_OPEN_UPLOAD_BYTES_LIMIT} bytes a seller may have in open uploads.`,
        [{ path: 'size', message: `at most ${Math.max(0, c.SELLER_OPEN_UPLOAD_BYTES_LIMIT - open.bytes)} while your other uploads are open` }],
      );
    }
  }

  private async checkSigningKey(accountId: string, keyId: string): Promise<void> {
    const key = await this.signingKeys.find(accountId, keyId);
    if (key && key.revokedAt === null) return;
    throw new DomainException(
      ErrorCode.InvalidManifestSignerRevoked,
      key
        ? `The manifest of this upload is signed with the key '${keyId}', which was revoked on ${key.revokedAt}: ` +
            'sign the bundle again with an active key and upload it anew (abort this upload).'
        : `The manifest of this upload is signed with the key '${keyId}', which is no longer a registered signing key of yours.`,
    );
  }

  private checkPart(upload: CatalogUpload, partNumber: number, size: number): void {
    if (partNumber > upload.partCount) {
      throw new DomainException(
        ErrorCode.InvalidParameterValue,
        `The upload has ${upload.partCount} parts: there is no part ${partNumber}.`,
        [{ path: 'partNumber', message: `must be 1 to ${upload.partCount}` }],
      );
    }
    const expected = uploadPartSize(numbersOf(upload), partNumber);
    if (size !== expected) {
      throw new DomainException(
        ErrorCode.InvalidParameterValue,
        `Part ${partNumber} of this upload has ${expected} bytes, not ${size}.`,
        [{ path: 'size', message: `must be ${expected}` }],
      );
    }
  }

  private async owned(caller: Caller, uploadId: string): Promise<CatalogUpload> {
    return this.ownedOrThrow(caller, uploadId, await this.uploads.findById(uploadId));
  }

  /** Another account's upload answers as a missing one. */
  private ownedOrThrow(caller: Caller, uploadId: string, upload: CatalogUpload | null): CatalogUpload {
    if (!upload || upload.ownerId !== caller.accountId) throw uploadNotFound(uploadId);
    return upload;
  }

  private async viewOf(upload: CatalogUpload): Promise<UploadView> {
    return toUploadView(upload, upload.state === 'aborted' ? [] : await this.uploads.parts(upload.id));
  }
}
