import { Injectable } from '@nestjs/common';
import { Prisma, UniqueViolation, type CatalogListing } from '@imagemart/database';
import {
  ErrorCode,
  type Caller,
  type Category,
  type CreateListingBody,
  type ListListingsRequest,
  type ListingPage,
  type ListingSummaryView,
  type ListingView,
  type PricingType,
  type ProductView,
  type UpdateListingBody,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { newProductCode, newResourceId, randomResourceId } from '../ids.js';
import { isAdmin, toImageView } from '../images/image.view.js';
import { PricingClient, type PageQuote } from '../pricing/pricing.client.js';
import { ListCache } from '../search/list-cache.js';
import { listedBy, readableBy } from '../search/visibility.sql.js';
import { SellerProfilesService } from '../sellers/seller-profiles.service.js';
import { ListingsRepository, type ListingCursor } from './listings.repository.js';

const listingNotFound = (id: string) =>
  new DomainException(ErrorCode.InvalidListingIDNotFound, `The listing id '${id}' does not exist.`);

const encodeCursor = (c: ListingCursor) => Buffer.from(JSON.stringify([c.createdAt, c.id])).toString('base64url');

function decodeCursor(token: string): ListingCursor {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as unknown[];
    if (
      typeof createdAt === 'string' &&
      /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2})?$/.test(createdAt) &&
      typeof id === 'string' &&
      /^lst-[0-9a-f]{17}$/.test(id)
    ) {
      return { createdAt, id };
    }
  } catch {
    /* reported below */
  }
  throw new DomainException(ErrorCode.InvalidPaginationToken, 'The page token is not valid: not a token this API returned.', [
    { path: 'cursor', message: 'not a token this API returned' },
  ]);
}

@Injectable()
export class ListingsService {
  constructor(
    private readonly listings: ListingsRepository,
    private readonly sellers: SellerProfilesService,
    private readonly pricing: PricingClient,
    private readonly listCache: ListCache,
  ) {}

  async create(caller: Caller, body: CreateListingBody): Promise<ListingView> {
    if (!caller.roles.includes('seller')) {
      throw new DomainException(ErrorCode.UnauthorizedOperation, 'Only seller accounts create listings.');
    }
    // A request that runs twice creates one listing: the id derives from the request id.
    const id = newResourceId('lst', caller.accountId, body.title);
    const earlier = await this.listings.findById(id);
    if (earlier?.sellerId === caller.accountId && earlier.title === body.title) return this.get(caller, id);
    const listingId = earlier ? randomResourceId('lst') : id;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.listings.create({
          id: listingId,
          sellerId: caller.accountId,
          title: body.title,
          summary: body.summary,
          description: body.description,
          categories: body.categories,
          pricingType: body.pricingType,
          productCode: body.pricingType === 'paid' ? newProductCode() : null,
        });
        break;
      } catch (err) {
        // A product code drawn twice (one in 36^20), or the same request running twice at once.
        if (!(err instanceof UniqueViolation) || attempt >= 3) throw err;
        if (await this.listings.findById(listingId)) break;
      }
    }
    await this.listCache.invalidate();
    return this.get(caller, listingId);
  }

  async update(caller: Caller, listingId: string, body: UpdateListingBody): Promise<ListingView> {
    const listing = await this.listings.findById(listingId);
    if (!listing) throw listingNotFound(listingId);
    if (listing.sellerId !== caller.accountId) {
      if (!(await this.listings.findVisible(listingId, caller.accountId, readableBy(caller.accountId)))) throw listingNotFound(listingId);
      throw new DomainException(ErrorCode.UnauthorizedOperation, 'Only the seller of a listing changes it.');
    }
    await this.listings.update(listingId, {
      ...(body.title !== undefined ? { title: body.title } : {}),
      ...(body.summary !== undefined ? { summary: body.summary } : {}),
      ...(body.description !== undefined ? { description: body.description } : {}),
      ...(body.categories !== undefined ? { categories: body.categories } : {}),
    });
    // Its texts are in its images' search documents, its categories in the category filter.
    await this.listCache.invalidate();
    return this.get(caller, listingId);
  }

  /** A listing its seller sees, or whoever may see one of its images; its versions are the images he may see. */
  async get(caller: Caller | null, listingId: string): Promise<ListingView> {
    const me = caller?.accountId ?? null;
    const visibility = isAdmin(caller) ? Prisma.sql`TRUE` : readableBy(me);
    const listing = await this.listings.findVisible(listingId, isAdmin(caller) ? null : me, visibility);
    if (!listing) throw listingNotFound(listingId);
    const [versions, sellers, quote] = await Promise.all([
      this.listings.versions(listingId, visibility),
      this.sellers.views([listing.sellerId]),
      this.pricing.quote([listing.productCode]),
    ]);
    return {
      ...this.summary(listing, sellers, quote),
      versions: versions.map((v) => toImageView(v, caller)),
    };
  }

  async list(caller: Caller | null, req: Omit<ListListingsRequest, 'caller'>): Promise<ListingPage> {
    const me = caller?.accountId ?? null;
    const rows = await this.listings.list(
      me,
      listedBy(me),
      {
        ...(req.category ? { category: req.category } : {}),
        ...(req.sellerId ? { sellerId: req.sellerId } : {}),
        ...(req.pricingType ? { pricingType: req.pricingType } : {}),
      },
      req.limit + 1,
      req.cursor ? decodeCursor(req.cursor) : undefined,
    );
    const page = rows.slice(0, req.limit);
    // One read of the sellers' profiles and one price quote for the whole page.
    const [sellers, quote] = await Promise.all([
      this.sellers.views([...new Set(page.map((l) => l.sellerId))]),
      this.pricing.quote(page.map((l) => l.productCode)),
    ]);
    const last = page.at(-1);
    return {
      items: page.map((l) => this.summary(l, sellers, quote)),
      nextCursor: rows.length > req.limit && last ? encodeCursor({ createdAt: last.createdAtKey, id: last.id }) : null,
    };
  }

  async product(productCode: string): Promise<ProductView> {
    const listing = await this.listings.findByProductCode(productCode);
    if (!listing?.productCode) {
      throw new DomainException(ErrorCode.InvalidProductCodeNotFound, `The product code '${productCode}' does not exist.`);
    }
    return { productCode: listing.productCode, ownerId: listing.sellerId, listingId: listing.id, title: listing.title };
  }

  private summary(
    l: CatalogListing,
    sellers: Map<string, ListingSummaryView['seller']>,
    quote: PageQuote,
  ): ListingSummaryView {
    return {
      listingId: l.id,
      sellerId: l.sellerId,
      title: l.title,
      summary: l.summary,
      description: l.description,
      categories: l.categories as Category[],
      pricingType: l.pricingType as PricingType,
      productCode: l.productCode,
      createdAt: l.createdAt.toISOString(),
      updatedAt: l.updatedAt.toISOString(),
      seller: sellers.get(l.sellerId)!,
      price: quote.priceOf(l.productCode),
    };
  }
}
