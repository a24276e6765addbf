import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG } from '@imagemart/config';
import { Prisma, PrismaClient, UniqueViolation, publishDomainEvent, type CatalogImage } from '@imagemart/database';
import {
  DEFAULT_PLATFORM_DETAILS,
  DomainEventType,
  ErrorCode,
  type BundleFailed,
  type BundleVerified,
  type Caller,
  type ImageChanged,
  type ImagePage,
  type ImageView,
  type SerializedImagePage,
  type ListImagesRequest,
  type RegisterImageBody,
  type SetImageStateRequest,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import type { CatalogConfig } from '../catalog.config.js';
import { newResourceId, randomResourceId } from '../ids.js';
import { ListingsRepository } from '../listings/listings.repository.js';
import { ImageSearchRepository, type ResolvedFilters } from '../search/image-search.repository.js';
import { ListCache, membershipChange, textChange, type ListChange } from '../search/list-cache.js';
import { decodePageToken, encodePageToken, queryDigest } from '../search/page-token.js';
import { executableByAllBranches, executableBySelfBranches, listedByBranches, readableBy } from '../search/visibility.sql.js';
import { isAdmin, toImageChanged, toImageView, type ImageRow } from './image.view.js';
import { ImagesRepository } from './images.repository.js';

export const imageNotFound = (imageId: string) =>
  new DomainException(ErrorCode.InvalidAMIIDNotFound, `The image id '${imageId}' does not exist.`);

const incorrectState = (imageId: string, state: string) =>
  new DomainException(ErrorCode.IncorrectState, `The image '${imageId}' is ${state}.`);

@Injectable()
export class ImagesService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly images: ImagesRepository,
    private readonly search: ImageSearchRepository,
    private readonly listings: ListingsRepository,
    private readonly listCache: ListCache,
    @Inject(APP_CONFIG) private readonly config: CatalogConfig,
  ) {}

  // Reads ---------------------------------------------------------------------------------------

  /** One image, if the caller may read it; admins read any. Otherwise 404, as for a missing one. */
  async get(caller: Caller | null, imageId: string): Promise<ImageView> {
    const row = await this.images.findVisible(imageId, isAdmin(caller) ? Prisma.sql`TRUE` : readableBy(caller?.accountId ?? null));
    if (!row) throw imageNotFound(imageId);
    return toImageView(row, caller);
  }

  /** A list page, from the list cache when the same caller asked the same since the last change. */
  list(caller: Caller | null, req: Omit<ListImagesRequest, 'caller'>): Promise<ImagePage> {
    return this.listCache.page(
      caller,
      req,
      () => this.listUncached(caller, req),
      (page) => this.withCurrentLaunchCounts(req, page),
    );
  }

  /** The same page as JSON, with the list generations a keeper of it checks before reusing it. */
  listSerialized(caller: Caller | null, req: Omit<ListImagesRequest, 'caller'>): Promise<SerializedImagePage> {
    return this.listCache.serialized(
      caller,
      req,
      () => this.listUncached(caller, req),
      (page) => this.withCurrentLaunchCounts(req, page),
    );
  }

  /**
   * A cached page renewed while no list generation has moved since it was computed: then only
   * launch counts can differ (see ListCache), so in any order but by launches the rows and their
   * order are the same, and one read of the rows' counts by primary key renews it. Null (compute
   * it anew) in the popularity order, or if a row is gone.
   */
  private async withCurrentLaunchCounts(req: Omit<ListImagesRequest, 'caller'>, page: ImagePage): Promise<ImagePage | null> {
    const sort = req.sort ?? (req.q ? 'relevance' : 'newest');
    if (sort === 'popularity') return null;
    const counts = await this.search.launchCounts(page.items.map((item) => item.imageId));
    const items: ImageView[] = [];
    for (const item of page.items) {
      const launchCount = counts.get(item.imageId);
      if (launchCount === undefined) return null;
      items.push(launchCount === item.launchCount ? item : { ...item, launchCount });
    }
    return { items, nextCursor: page.nextCursor };
  }

  private async listUncached(caller: Caller | null, req: Omit<ListImagesRequest, 'caller'>): Promise<ImagePage> {
    const me = caller?.accountId ?? null;
    const f = req.filters;
    const needsSelf = f.executableBy === 'self' || f.owner?.includes('self');
    if (needsSelf && me === null) {
      throw new DomainException(ErrorCode.AuthFailure, "The value 'self' names the signed-in account: send an API key.");
    }
    const sort = req.sort ?? (req.q ? 'relevance' : 'newest');
    if (sort === 'relevance' && !req.q) {
      throw new DomainException(ErrorCode.InvalidParameterValue, 'sort=relevance needs a search text q.', [
        { path: 'sort', message: 'relevance needs q' },
      ]);
    }
    const visibility =
      f.executableBy === 'self'
        ? executableBySelfBranches(me!)
        : f.executableBy === 'all'
          ? executableByAllBranches(me)
          : listedByBranches(me);
    const filters: ResolvedFilters = {
      ...(f.architecture ? { architecture: f.architecture } : {}),
      ...(f.owner ? { owner: [...new Set(f.owner.map((o) => (o === 'self' ? me! : o)))] } : {}),
      ...(f.isPublic !== undefined ? { isPublic: f.isPublic } : {}),
      ...(f.productCode ? { productCode: f.productCode } : {}),
      ...(f.state ? { state: f.state } : {}),
      ...(f.name ? { name: f.name } : {}),
      ...(f.pricingType ? { pricingType: f.pricingType } : {}),
      ...(f.category ? { category: f.category } : {}),
    };
    // A token is good only for the list it came from (same caller, filters, text and order).
    const digest = queryDigest([me, f, req.q ?? null, sort]);
    const after = req.cursor ? decodePageToken(req.cursor, sort, digest) : undefined;
    const rows = await this.search.search({
      visibility,
      filters,
      sort,
      limit: req.limit + 1,
      ...(req.q ? { q: req.q } : {}),
      ...(after ? { after } : {}),
    });
    const page = rows.slice(0, req.limit);
    const last = page.at(-1);
    return {
      items: page.map((r) => toImageView(r, caller)),
      nextCursor: rows.length > req.limit && last ? encodePageToken(sort, digest, { key: last.sortKey, id: last.id }) : null,
    };
  }

  async internalGet(imageId: string): Promise<ImageChanged> {
    const image = await this.images.findById(imageId);
    if (!image) throw imageNotFound(imageId);
    return toImageChanged(image);
  }

  // Changes: each one counts a revision and publishes catalog.image.changed in its transaction ---

  async register(caller: Caller, body: RegisterImageBody): Promise<ImageView> {
    if (!caller.roles.includes('seller')) {
      throw new DomainException(ErrorCode.UnauthorizedOperation, 'Only seller accounts register images.');
    }
    const ownerId = caller.accountId;
    const run = (id: string) =>
      this.prisma.$transaction(async (tx) => {
        // A request that runs again finds the image its first run registered.
        const earlier = await this.images.findById(id, tx);
        if (earlier) {
          if (earlier.ownerId === ownerId && earlier.name === body.name && earlier.state !== 'deregistered') return earlier;
          return null;
        }
        if (await this.images.nameTaken(ownerId, body.name, tx)) throw duplicateName(body.name);
        // The seller's pending images are counted under his quota lock: registrations at once
        // cannot pass the limit together.
        await this.images.lockSellerQuota(ownerId, tx);
        const pending = await this.images.countPending(ownerId, tx);
        if (pending >= this.config.SELLER_PENDING_IMAGE_LIMIT) throw pendingLimit(this.config.SELLER_PENDING_IMAGE_LIMIT);
        const productCodes = await this.productCodesFor(caller, body, tx);
        const image = await this.images.create(
          {
            id,
            ownerId,
            name: body.name,
            description: body.description || null,
            version: body.version ?? null,
            architecture: body.architecture,
            virtualizationType: body.virtualizationType,
            rootDeviceType: body.rootDeviceType,
            rootDeviceName: body.rootDeviceName ?? null,
            blockDeviceMappings: body.blockDeviceMappings,
            kernelId: body.kernelId ?? null,
            ramdiskId: body.ramdiskId ?? null,
            platform: body.platform,
            platformDetails: body.platformDetails ?? DEFAULT_PLATFORM_DETAILS[body.platform],
            productCodes,
            listingId: body.listingId ?? null,
            sourceImageId: body.sourceImageId ?? null,
          },
          tx,
        );
        await this.publish(tx, image);
        return image;
      });
    const id = newResourceId('ami', ownerId, body.name);
    // The same request running twice at once: whichever run loses the race on the name finds the
    // image the other run registered under the request's id, and answers with it.
    const sameRequestsImage = async () => {
      const earlier = await this.images.findById(id);
      return earlier && earlier.ownerId === ownerId && earlier.name === body.name && earlier.state !== 'deregistered' ? earlier : null;
    };
    for (let attempt = 1; ; attempt++) {
      try {
        const image = (await run(id)) ?? (await run(randomResourceId('ami')));
        if (!image) throw new Error('an image id collided twice');
        // A new image is pending, named in no launch permission: only its owner lists it.
        await this.listCache.invalidate({ kind: 'accounts', accounts: [ownerId] });
        return await this.viewOf(image.id, caller);
      } catch (err) {
        const nameConflict =
          (err instanceof DomainException && err.code === ErrorCode.InvalidAMINameDuplicate) ||
          (err instanceof UniqueViolation && (err.constraint === 'image_owner_id_name_key' || err.fields.includes('name')));
        if (nameConflict) {
          const earlier = await sameRequestsImage();
          if (earlier) return await this.viewOf(earlier.id, caller);
          throw err instanceof DomainException ? err : duplicateName(body.name);
        }
        if (!(err instanceof UniqueViolation)) throw err;
        // Both runs inserted the same id at once: the next attempt finds the first one's image.
        if (attempt < 3) continue;
        throw err;
      }
    }
  }

  /**
   * The image's product codes: the source image's (which the seller cannot strip), the paid
   * listing's, and codes of the seller's own listings he names.
   */
  private async productCodesFor(caller: Caller, body: RegisterImageBody, tx: Prisma.TransactionClient): Promise<string[]> {
    const codes = new Set<string>();
    if (body.sourceImageId) {
      const source = await this.images.findVisible(body.sourceImageId, readableBy(caller.accountId), tx);
      if (!source || source.state === 'deregistered') throw imageNotFound(body.sourceImageId);
      source.productCodes.forEach((c) => codes.add(c));
    }
    if (body.listingId) {
      const listing = await this.listings.findById(body.listingId, tx);
      if (!listing || listing.sellerId !== caller.accountId) {
        throw new DomainException(ErrorCode.InvalidListingIDNotFound, `The listing id '${body.listingId}' does not exist.`);
      }
      if (listing.productCode) codes.add(listing.productCode);
    }
    const named = body.productCodes.filter((c) => !codes.has(c));
    const own = new Set(await this.listings.codesOwnedBy(caller.accountId, named, tx));
    const foreign = named.filter((c) => !own.has(c));
    if (foreign.length > 0) {
      throw new DomainException(
        ErrorCode.InvalidParameterValue,
        `Product codes must be of your own listings (or come from the source image): ${foreign.join(', ')}.`,
        foreign.map((c) => ({ path: 'productCodes', message: `${c} is not a product of yours` })),
      );
    }
    named.forEach((c) => codes.add(c));
    return [...codes].sort();
  }

  async updateDescription(caller: Caller, imageId: string, description: string): Promise<ImageView> {
    const change = await this.prisma.$transaction(async (tx): Promise<ListChange | null> => {
      const image = await this.lockReadable(caller, imageId, tx);
      if (image.ownerId !== caller.accountId) {
        throw new DomainException(ErrorCode.UnauthorizedOperation, 'Only the owner of an image changes it.');
      }
      if (image.state === 'deregistered') throw incorrectState(imageId, 'deregistered');
      const next = description || null;
      if (image.description === next) return null;
      const before = await this.search.audience(imageId, tx);
      await this.publish(tx, await this.images.update(imageId, { description: next }, tx));
      const after = await this.search.audience(imageId, tx);
      return before && after ? textChange(before, after) : { kind: 'all' };
    });
    if (change) await this.listCache.invalidate(change);
    return this.viewOf(imageId, caller);
  }

  /** The owner or an admin. Deregistering a deregistered image answers the same, with no change. */
  async deregister(caller: Caller, imageId: string): Promise<ImageView> {
    const change = await this.prisma.$transaction(async (tx) => {
      const image = await this.lockReadable(caller, imageId, tx);
      if (image.ownerId !== caller.accountId && !isAdmin(caller)) {
        throw new DomainException(ErrorCode.UnauthorizedOperation, 'Only the owner of an image (or an admin) deregisters it.');
      }
      const before = await this.search.audience(imageId, tx);
      await this.toDeregistered(image, tx);
      return before ? membershipChange(before, null) : ({ kind: 'all' } as const);
    });
    await this.listCache.invalidate(change);
    return this.viewOf(imageId, caller);
  }

  /**
   * The publishing flow's state changes. The same request twice changes nothing the second time;
   * a deregistered image stays so (asking for another state is 409 IncorrectState).
   */
  async setState(req: SetImageStateRequest): Promise<ImageView> {
    let change: ListChange = { kind: 'all' };
    await this.prisma.$transaction(async (tx) => {
      const image = await this.images.lock(req.imageId, tx);
      if (!image) throw imageNotFound(req.imageId);
      const before = await this.search.audience(req.imageId, tx);
      if (before) change = membershipChange(before, { ...before, state: req.state });
      if (req.state === 'deregistered') return this.toDeregistered(image, tx);
      if (image.state === 'deregistered') throw incorrectState(req.imageId, 'deregistered and does not come back');
      const reason = req.stateReason ?? (req.state === image.state ? undefined : null);
      const data: Prisma.CatalogImageUncheckedUpdateInput = {};
      if (image.state !== req.state) data.state = req.state;
      if (reason !== undefined && (image.stateReasonCode !== (reason?.code ?? null) || image.stateReasonMessage !== (reason?.message ?? null))) {
        data.stateReasonCode = reason?.code ?? null;
        data.stateReasonMessage = reason?.message ?? null;
      }
      if (req.manifestLocation !== undefined && req.manifestLocation !== image.manifestLocation) {
        data.manifestLocation = req.manifestLocation;
      }
      if (req.imageSize !== undefined && BigInt(req.imageSize) !== image.imageSize) data.imageSize = BigInt(req.imageSize);
      if (req.manifestDigest !== undefined && req.manifestDigest !== image.manifestDigest) data.manifestDigest = req.manifestDigest;
      if (req.signerKeyId !== undefined && req.signerKeyId !== image.signerKeyId) data.signerKeyId = req.signerKeyId;
      if (Object.keys(data).length === 0) return;
      await this.publish(tx, await this.images.update(req.imageId, data, tx));
    });
    await this.listCache.invalidate(change);
    return this.viewOf(req.imageId, null, true);
  }

  /**
   * A verified bundle makes its image available, with where the manifest is, how big the image
   * is, and what was verified: the manifest's SHA-256 and the key its signature verified with,
   * which every launch's host checks again. An image deregistered meanwhile stays deregistered
   * (its bundle is deleted separately).
   */
  async bundleVerified(event: BundleVerified): Promise<void> {
    await this.ignoringDeregistered(() =>
      this.setState({
        imageId: event.imageId,
        state: 'available',
        manifestLocation: event.manifestLocation,
        imageSize: event.imageSize,
        manifestDigest: event.manifestDigest,
        signerKeyId: event.signerKeyId,
      }),
    );
  }

  /** A bundle that failed for good marks its image failed, with the reason the seller reads. */
  async bundleFailed(event: BundleFailed): Promise<void> {
    await this.ignoringDeregistered(() =>
      this.setState({ imageId: event.imageId, state: 'failed', stateReason: { code: event.code, message: event.reason } }),
    );
  }

  private async ignoringDeregistered(change: () => Promise<unknown>): Promise<void> {
    try {
      await change();
    } catch (err) {
      if (err instanceof DomainException && err.code === ErrorCode.IncorrectState) return;
      throw err;
    }
  }

  /**
   * Marks failed, with `reason`, a pending image that got no bundle since `cutoff` (none under
   * way: no upload open or complete). Safe with several replicas: the image is taken with SKIP
   * LOCKED and the rule checked again under its lock, so one replica fails it, once. False when
   * the image no longer qualifies or someone else holds it.
   */
  async expirePending(imageId: string, cutoff: Date, reason: { code: string; message: string }): Promise<boolean> {
    const change = await this.prisma.$transaction(async (tx): Promise<ListChange | null> => {
      const image = await this.images.lockIfStalePending(imageId, cutoff, tx);
      return image ? this.toFailed(image, reason, tx) : null;
    });
    if (!change) return false;
    await this.listCache.invalidate(change);
    return true;
  }

  /**
   * Within the caller's transaction (an expired upload's), marks the upload's image failed if it
   * is still pending; the list change to pass to {@link listsChanged} after the commit, or null.
   */
  async failPendingWithin(tx: Prisma.TransactionClient, imageId: string, reason: { code: string; message: string }): Promise<ListChange | null> {
    const image = await this.images.lock(imageId, tx);
    return image?.state === 'pending' ? this.toFailed(image, reason, tx) : null;
  }

  /** Moves the list generations after a change committed (see ListCache). */
  listsChanged(change: ListChange): Promise<void> {
    return this.listCache.invalidate(change);
  }

  private async toFailed(image: CatalogImage, reason: { code: string; message: string }, tx: Prisma.TransactionClient): Promise<ListChange> {
    const before = await this.search.audience(image.id, tx);
    await this.publish(tx, await this.images.update(image.id, { state: 'failed', stateReasonCode: reason.code, stateReasonMessage: reason.message }, tx));
    return before ? membershipChange(before, { ...before, state: 'failed' }) : { kind: 'all' };
  }

  async recordLaunches(imageId: string, count: number): Promise<{ imageId: string; launchCount: number }> {
    const launchCount = await this.images.addLaunches(imageId, count);
    if (launchCount === null) throw imageNotFound(imageId);
    return { imageId, launchCount };
  }

  // Helpers ---------------------------------------------------------------------------------------

  private async toDeregistered(image: CatalogImage, tx: Prisma.TransactionClient): Promise<void> {
    if (image.state === 'deregistered') return;
    await this.publish(tx, await this.images.update(image.id, { state: 'deregistered', deregisteredAt: new Date() }, tx));
  }

  /** Locks an image the caller may read (admins: any), else 404. */
  private async lockReadable(caller: Caller, imageId: string, tx: Prisma.TransactionClient): Promise<CatalogImage> {
    const image = await this.images.lock(imageId, tx);
    if (!image) throw imageNotFound(imageId);
    if (!isAdmin(caller) && image.ownerId !== caller.accountId) {
      const readable = await this.images.findVisible(imageId, readableBy(caller.accountId), tx);
      if (!readable) throw imageNotFound(imageId);
    }
    return image;
  }

  private publish(tx: Prisma.TransactionClient, image: CatalogImage): Promise<void> {
    const requestId = requestContext.requestId();
    return publishDomainEvent(tx, 'catalog', {
      type: DomainEventType.imageChanged,
      payload: toImageChanged(image),
      ...(requestId ? { requestId } : {}),
    });
  }

  private async viewOf(imageId: string, caller: Caller | null, internal = false): Promise<ImageView> {
    const row: ImageRow | null = await this.images.findRow(imageId);
    if (!row) throw imageNotFound(imageId);
    return toImageView(row, internal ? { accountId: row.ownerId, roles: [] } : caller);
  }
}

const pendingLimit = (limit: number) =>
  new DomainException(
    ErrorCode.ResourceLimitExceeded,
    `You have ${limit} pending images, the most a seller may have at once: complete or abort their uploads, or deregister one, before registering another.`,
  );

const duplicateName = (name: string) =>
  new DomainException(ErrorCode.InvalidAMINameDuplicate, `You already have an image named '${name}'.`);
