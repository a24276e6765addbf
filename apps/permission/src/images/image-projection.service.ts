import { Injectable, Logger } from '@nestjs/common';
import type { PermissionImage } from '@imagemart/database';
import {
  CatalogPattern,
  ErrorCode,
  imageChangedSchema,
  type ImageChanged,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { DecisionInvalidationBus } from '../decision/decision-invalidation.bus.js';
import { UpstreamClients } from '../upstream/upstream.clients.js';
import { ImageProjectionRepository } from './image-projection.repository.js';

/** How often a pending image may be checked with the catalog. */
const PENDING_RECHECK_MS = 5_000;

/** EC2's wording for an image that does not exist (or that the caller may not know of). */
export const imageNotFound = (imageId: string) =>
  new DomainException(ErrorCode.InvalidAMIIDNotFound, `The image id '[${imageId}]' does not exist`);

/**
 * The permission service's view of the catalog's images. Kept by `catalog.image.changed` events;
 * an image the projection lacks (its event not yet applied) is asked of the catalog and kept by
 * the same revision rule, so a later event with the same revision is a no-op.
 */
@Injectable()
export class ImageProjectionService {
  private readonly logger = new Logger(ImageProjectionService.name);
  private readonly rechecked = new Map<string, number>();

  constructor(
    private readonly images: ImageProjectionRepository,
    private readonly upstream: UpstreamClients,
    private readonly invalidations: DecisionInvalidationBus,
  ) {}

  /** Applies an image's state when it is newer than the one held. */
  async apply(image: ImageChanged): Promise<boolean> {
    const applied = await this.images.upsert(image);
    if (applied) await this.invalidations.invalidate('image', image.imageId);
    return applied;
  }

  /** The image from the projection, else from the catalog; null when the catalog does not know it. */
  async find(imageId: string): Promise<PermissionImage | null> {
    const held = await this.images.find(imageId);
    if (held) return held;
    if (!(await this.fetch(imageId))) return null;
    return this.images.find(imageId);
  }

  /**
   * True when a pending image should be checked with the catalog now: the event saying it became
   * available may still be on its way. At most once every few seconds per image (by then the
   * event has come), so a pending image does not cost a catalog call per request.
   */
  shouldRecheckPending(imageId: string): boolean {
    const now = Date.now();
    const last = this.rechecked.get(imageId);
    if (last !== undefined && now - last < PENDING_RECHECK_MS) return false;
    if (this.rechecked.size >= 10_000) this.rechecked.clear();
    this.rechecked.set(imageId, now);
    return true;
  }

  /** The image, with a pending one checked with the catalog first (see shouldRecheckPending). */
  async findCurrent(imageId: string): Promise<PermissionImage | null> {
    const image = await this.find(imageId);
    if (image?.state !== 'pending' || !this.shouldRecheckPending(imageId)) return image;
    await this.fetch(imageId);
    return this.images.find(imageId);
  }

  /** Like {@link find}, but an unknown image is `InvalidAMIID.NotFound`. */
  async get(imageId: string): Promise<PermissionImage> {
    const image = await this.find(imageId);
    if (!image) throw imageNotFound(imageId);
    return image;
  }

  /** Asks the catalog for an image and keeps it. False when the catalog does not know it. */
  async fetch(imageId: string): Promise<boolean> {
    let answer: unknown;
    try {
      answer = await this.upstream.call('catalog', CatalogPattern.imageInternalGet, { imageId });
    } catch (err) {
      if (err instanceof DomainException && err.code === ErrorCode.InvalidAMIIDNotFound) return false;
      throw err;
    }
    const parsed = imageChangedSchema.safeParse(answer);
    if (!parsed.success || parsed.data.imageId !== imageId) {
      this.logger.error({ imageId, issues: parsed.error?.issues }, 'catalog answered an image that does not match its contract');
      throw new DomainException(ErrorCode.InternalError, 'The image could not be looked up.');
    }
    await this.apply(parsed.data);
    return true;
  }
}
