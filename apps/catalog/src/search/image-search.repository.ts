import { Injectable } from '@nestjs/common';
import { Prisma, PrismaClient } from '@imagemart/database';
import type { ImageSort, PricingType } from '@imagemart/contracts';
import type { ImageRow } from '../images/image.view.js';
import { nameFilterToLike } from './name-pattern.js';
import type { PageKey } from './page-token.js';
import { IMAGE_COLUMNS, type VisibilityBranches } from './visibility.sql.js';

/** Filters with `self` already resolved to an account id. */
export interface ResolvedFilters {
  architecture?: string[];
  owner?: string[];
  isPublic?: boolean;
  productCode?: string[];
  state?: string[];
  name?: string[];
  pricingType?: PricingType;
  category?: string[];
}

export interface ImageSearch {
  /** Which images the caller may see in this list, as the branches of a union (see visibility.sql.ts). */
  visibility: VisibilityBranches;
  filters: ResolvedFilters;
  q?: string;
  sort: ImageSort;
  limit: number;
  after?: PageKey;
}

export type SearchRow = ImageRow & { sortKey: number | string };

/** Who can list an image, and the words of its search document: what a change of it can alter. */
export interface ImageAudience {
  ownerId: string;
  isPublic: boolean;
  state: string;
  /** Accounts a launch permission names (any share state). */
  grantees: string[];
  /** The lexemes of its search document. */
  lexemes: string[];
}

/**
 * Relevance ranks at most this many matching images of each visibility branch: the first ones
 * the full-text index yields, in the table's storage order. A text that matches more (a broad
 * word such as an OS family) is ranked over that sample, not over every match; see
 * docs/catalog.md. Ranking 2,000 rows costs a few milliseconds; ranking 25,000 cost 30–60.
 */
export const RANK_CANDIDATES = 2000;

const TSQUERY = (q: string) => Prisma.sql`websearch_to_tsquery('english', ${q})`;

/**
 * Browse and search as one SQL statement: each visibility branch (public, own, shared) is its own
 * indexed read with the filters, the text match, the keyset condition, the order and the limit;
 * the union of the branches is ordered and cut once more, and only the page's rows are read whole.
 * Keyset pages on (sort key, id) keep a page stable while images are added.
 */
@Injectable()
export class ImageSearchRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async search(s: ImageSearch): Promise<SearchRow[]> {
    const common: Prisma.Sql[] = filterClauses(s.filters);
    if (s.q !== undefined) common.push(Prisma.sql`i.search_vector @@ ${TSQUERY(s.q)}`);
    const sort = sortSql(s.sort, s.q);
    const after = s.after ? [sort.after(s.after)] : [];
    const branches = s.visibility.map((visible) => {
      const where = Prisma.join([visible, ...common], ' AND ');
      if (sort.ranked) {
        // The rank is computed over a bounded sample of the branch's matches (see RANK_CANDIDATES).
        const keyset = after.length ? Prisma.sql`WHERE ${Prisma.join(after, ' AND ')}` : Prisma.empty;
        return Prisma.sql`(SELECT i.id, ${sort.value} AS o FROM (
            SELECT i.id, i.search_vector FROM "catalog"."image" i WHERE ${where} LIMIT ${RANK_CANDIDATES}) i
          ${keyset}
          ORDER BY ${sort.order} LIMIT ${s.limit})`;
      }
      return Prisma.sql`(SELECT i.id, ${sort.value} AS o FROM "catalog"."image" i
         WHERE ${Prisma.join([where, ...after], ' AND ')}
         ORDER BY ${sort.order} LIMIT ${s.limit})`;
    });
    return this.prisma.$queryRaw<SearchRow[]>`
      WITH hits AS (${Prisma.join(branches, ' UNION ')})
      SELECT ${IMAGE_COLUMNS}, ${sort.key} AS "sortKey"
        FROM hits h JOIN "catalog"."image" i ON i.id = h.id
       ORDER BY ${sort.outer}
       LIMIT ${s.limit}`;
  }

  /** The launch counts of these images (by primary key), by id; a missing image is left out. */
  async launchCounts(imageIds: string[]): Promise<Map<string, number>> {
    if (imageIds.length === 0) return new Map();
    const rows = await this.prisma.$queryRaw<{ id: string; launchCount: bigint }[]>`
      SELECT i.id, i.launch_count AS "launchCount" FROM "catalog"."image" i WHERE i.id = ANY(${imageIds}::text[])`;
    return new Map(rows.map((r) => [r.id, Number(r.launchCount)]));
  }

  /** A search text as PostgreSQL reads it: the text form of its tsquery. */
  async tsquery(q: string): Promise<string> {
    const rows = await this.prisma.$queryRaw<{ q: string }[]>`SELECT ${TSQUERY(q)}::text AS q`;
    return rows[0]?.q ?? '';
  }

  /** See {@link ImageAudience}; null for no such image. */
  async audience(imageId: string, tx: Prisma.TransactionClient = this.prisma): Promise<ImageAudience | null> {
    const rows = await tx.$queryRaw<ImageAudience[]>`
      SELECT i.owner_id AS "ownerId", i.is_public AS "isPublic", i.state,
             ARRAY(SELECT g.account_id FROM "catalog"."launch_grant" g WHERE g.image_id = i.id) AS grantees,
             tsvector_to_array(i.search_vector) AS lexemes
        FROM "catalog"."image" i WHERE i.id = ${imageId}`;
    return rows[0] ?? null;
  }
}

function filterClauses(f: ResolvedFilters): Prisma.Sql[] {
  const out: Prisma.Sql[] = [];
  if (f.architecture) out.push(Prisma.sql`i.architecture = ANY(${f.architecture}::text[])`);
  if (f.owner) out.push(Prisma.sql`i.owner_id = ANY(${f.owner}::text[])`);
  if (f.isPublic !== undefined) out.push(Prisma.sql`i.is_public = ${f.isPublic}`);
  if (f.productCode) out.push(Prisma.sql`i.product_codes && ${f.productCode}::varchar(25)[]`);
  if (f.state) out.push(Prisma.sql`i.state = ANY(${f.state}::text[])`);
  if (f.name) {
    const likes = f.name.map((p) => Prisma.sql`i.name LIKE ${nameFilterToLike(p)} ESCAPE '\\'`);
    out.push(Prisma.sql`(${Prisma.join(likes, ' OR ')})`);
  }
  if (f.pricingType === 'paid') out.push(Prisma.sql`cardinality(i.product_codes) > 0`);
  if (f.pricingType === 'free') out.push(Prisma.sql`cardinality(i.product_codes) = 0`);
  if (f.category) {
    out.push(Prisma.sql`EXISTS (SELECT 1 FROM "catalog"."listing" l
      WHERE l.id = i.listing_id AND l.categories && ${f.category}::varchar(32)[])`);
  }
  return out;
}

interface SortSql {
  /** The value rows are ordered by, over `i` in a branch (carried out of it as `h.o`). */
  value: Prisma.Sql;
  /** The sort key as it goes into a page token, over the page's `i` and `h`. */
  key: Prisma.Sql;
  /** ORDER BY inside a branch. */
  order: Prisma.Sql;
  /** ORDER BY over the union `h`. */
  outer: Prisma.Sql;
  /** Relevance: ranked over a bounded sample of the matches. */
  ranked: boolean;
  /** The keyset condition, over `i` in a branch. */
  after: (p: PageKey) => Prisma.Sql;
}

/** The sort key (as it goes into a page token), the ORDER BY, and the keyset condition. */
function sortSql(sort: ImageSort, q: string | undefined): SortSql {
  switch (sort) {
    case 'relevance': {
      // float8 holds ts_rank's float4 exactly, and JSON numbers carry a float8 exactly.
      const rank = Prisma.sql`ts_rank(i.search_vector, ${TSQUERY(q ?? '')})::float8`;
      return {
        value: rank,
        key: Prisma.sql`h.o`,
        order: Prisma.sql`o DESC, i.id DESC`,
        outer: Prisma.sql`h.o DESC, h.id DESC`,
        ranked: true,
        after: (p) => Prisma.sql`(${rank}, i.id) < (${Number(p.key)}::float8, ${p.id})`,
      };
    }
    case 'name':
      return {
        value: Prisma.sql`i.name COLLATE "C"`,
        key: Prisma.sql`i.name`,
        order: Prisma.sql`i.name COLLATE "C" ASC, i.id ASC`,
        outer: Prisma.sql`h.o COLLATE "C" ASC, h.id ASC`,
        ranked: false,
        after: (p) => Prisma.sql`(i.name COLLATE "C", i.id) > (${String(p.key)}::text COLLATE "C", ${p.id})`,
      };
    case 'newest':
      return {
        value: Prisma.sql`i.created_at`,
        key: Prisma.sql`i.created_at::text`,
        order: Prisma.sql`i.created_at DESC, i.id DESC`,
        outer: Prisma.sql`h.o DESC, h.id DESC`,
        ranked: false,
        after: (p) => Prisma.sql`(i.created_at, i.id) < (${String(p.key)}::timestamptz, ${p.id})`,
      };
    case 'popularity':
      return {
        value: Prisma.sql`i.launch_count`,
        key: Prisma.sql`h.o::text`,
        order: Prisma.sql`i.launch_count DESC, i.id DESC`,
        outer: Prisma.sql`h.o DESC, h.id DESC`,
        ranked: false,
        after: (p) => Prisma.sql`(i.launch_count, i.id) < (${String(p.key)}::bigint, ${p.id})`,
      };
  }
}
