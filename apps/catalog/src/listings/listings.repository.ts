import { Injectable } from '@nestjs/common';
import { Prisma, PrismaClient, withPrismaErrors, type CatalogListing } from '@imagemart/database';
import type { ImageRow } from '../images/image.view.js';
import { IMAGE_COLUMNS } from '../search/visibility.sql.js';

type Tx = Prisma.TransactionClient | PrismaClient;

export interface ListingFilters {
  category?: string;
  sellerId?: string;
  pricingType?: string;
}

export interface ListingCursor {
  createdAt: string;
  id: string;
}

export type ListingRow = CatalogListing & { createdAtKey: string };

/**
 * A listing is seen by its seller and by whoever may see one of its images (`imageVisibility`,
 * SQL over `i`): a product page is no way around the visibility of images.
 */
const visibleListing = (sellerId: string | null, imageVisibility: Prisma.Sql) => Prisma.sql`(
  ${sellerId === null ? Prisma.sql`FALSE` : Prisma.sql`l.seller_id = ${sellerId}`}
  OR EXISTS (SELECT 1 FROM "catalog"."image" i WHERE i.listing_id = l.id AND ${imageVisibility}))`;

const LISTING_COLUMNS = Prisma.sql`
  l.id, l.seller_id AS "sellerId", l.title, l.summary, l.description, l.categories,
  l.pricing_type AS "pricingType", l.product_code AS "productCode",
  l.created_at AS "createdAt", l.updated_at AS "updatedAt", l.created_at::text AS "createdAtKey"`;

@Injectable()
export class ListingsRepository {
  constructor(private readonly prisma: PrismaClient) {}

  create(data: Prisma.CatalogListingUncheckedCreateInput, tx: Tx = this.prisma): Promise<CatalogListing> {
    return withPrismaErrors(() => tx.catalogListing.create({ data }));
  }

  findById(id: string, tx: Tx = this.prisma): Promise<CatalogListing | null> {
    return tx.catalogListing.findUnique({ where: { id } });
  }

  findByProductCode(productCode: string): Promise<CatalogListing | null> {
    return this.prisma.catalogListing.findUnique({ where: { productCode } });
  }

  /** The product codes among `codes` that belong to listings of `sellerId`. */
  async codesOwnedBy(sellerId: string, codes: string[], tx: Tx = this.prisma): Promise<string[]> {
    if (codes.length === 0) return [];
    const rows = await tx.catalogListing.findMany({
      where: { sellerId, productCode: { in: codes } },
      select: { productCode: true },
    });
    return rows.map((r) => r.productCode).filter((c): c is string => c !== null);
  }

  update(id: string, data: Prisma.CatalogListingUncheckedUpdateInput): Promise<CatalogListing> {
    return withPrismaErrors(() => this.prisma.catalogListing.update({ where: { id }, data }));
  }

  async findVisible(id: string, sellerId: string | null, imageVisibility: Prisma.Sql): Promise<ListingRow | null> {
    const rows = await this.prisma.$queryRaw<ListingRow[]>`
      SELECT ${LISTING_COLUMNS} FROM "catalog"."listing" l
       WHERE l.id = ${id} AND ${visibleListing(sellerId, imageVisibility)}`;
    return rows[0] ?? null;
  }

  /** Newest first, keyset on (created_at, id). */
  list(
    sellerId: string | null,
    imageVisibility: Prisma.Sql,
    filters: ListingFilters,
    limit: number,
    after?: ListingCursor,
  ): Promise<ListingRow[]> {
    const where: Prisma.Sql[] = [visibleListing(sellerId, imageVisibility)];
    if (filters.category) where.push(Prisma.sql`${filters.category}::varchar(32) = ANY(l.categories)`);
    if (filters.sellerId) where.push(Prisma.sql`l.seller_id = ${filters.sellerId}`);
    if (filters.pricingType) where.push(Prisma.sql`l.pricing_type = ${filters.pricingType}`);
    if (after) where.push(Prisma.sql`(l.created_at, l.id) < (${after.createdAt}::timestamptz, ${after.id})`);
    return this.prisma.$queryRaw<ListingRow[]>`
      SELECT ${LISTING_COLUMNS} FROM "catalog"."listing" l
       WHERE ${Prisma.join(where, ' AND ')}
       ORDER BY l.created_at DESC, l.id DESC
       LIMIT ${limit}`;
  }

  /** A listing's images that `imageVisibility` lets the caller see, newest first. */
  versions(listingId: string, imageVisibility: Prisma.Sql, limit = 100): Promise<ImageRow[]> {
    return this.prisma.$queryRaw<ImageRow[]>`
      SELECT ${IMAGE_COLUMNS} FROM "catalog"."image" i
       WHERE i.listing_id = ${listingId} AND i.state <> 'deregistered' AND ${imageVisibility}
       ORDER BY i.created_at DESC, i.id DESC
       LIMIT ${limit}`;
  }
}
