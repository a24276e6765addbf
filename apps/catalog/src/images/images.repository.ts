import { Injectable } from '@nestjs/common';
import { Prisma, PrismaClient, withPrismaErrors, type CatalogImage } from '@imagemart/database';
import type { ImageRow } from './image.view.js';
import { IMAGE_COLUMNS } from '../search/visibility.sql.js';

export type Tx = Prisma.TransactionClient | PrismaClient;

export type NewImage = Omit<
  Prisma.CatalogImageUncheckedCreateInput,
  'revision' | 'isPublic' | 'lpRevision' | 'launchCount' | 'createdAt' | 'updatedAt' | 'deregisteredAt' | 'state'
>;

@Injectable()
export class ImagesRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** One image with its share flag, if `visibility` (SQL over `i`) lets the caller read it. */
  async findVisible(id: string, visibility: Prisma.Sql, tx: Tx = this.prisma): Promise<ImageRow | null> {
    const rows = await tx.$queryRaw<ImageRow[]>`
      SELECT ${IMAGE_COLUMNS} FROM "catalog"."image" i WHERE i.id = ${id} AND ${visibility}`;
    return rows[0] ?? null;
  }

  findRow(id: string, tx: Tx = this.prisma): Promise<ImageRow | null> {
    return this.findVisible(id, Prisma.sql`TRUE`, tx);
  }

  /** Locks the image row for the rest of the transaction. */
  async lock(id: string, tx: Prisma.TransactionClient): Promise<CatalogImage | null> {
    const rows = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM "catalog"."image" WHERE id = ${id} FOR UPDATE`;
    if (!rows[0]) return null;
    return tx.catalogImage.findUnique({ where: { id } });
  }

  findById(id: string, tx: Tx = this.prisma): Promise<CatalogImage | null> {
    return tx.catalogImage.findUnique({ where: { id } });
  }

  nameTaken(ownerId: string, name: string, tx: Tx = this.prisma): Promise<boolean> {
    return tx.catalogImage
      .count({ where: { ownerId, name, state: { not: 'deregistered' } } })
      .then((n) => n > 0);
  }

  create(image: NewImage, tx: Tx = this.prisma): Promise<CatalogImage> {
    return withPrismaErrors(() => tx.catalogImage.create({ data: { ...image, state: 'pending', revision: 1 } }));
  }

  /** Applies a change and counts one revision more. */
  update(id: string, data: Prisma.CatalogImageUncheckedUpdateInput, tx: Tx = this.prisma): Promise<CatalogImage> {
    return withPrismaErrors(() => tx.catalogImage.update({ where: { id }, data: { ...data, revision: { increment: 1 } } }));
  }

  /**
   * The seller's quota lock (class 0x71756f, "quo"), to the end of the transaction: registering an
   * image and opening an upload count the seller's pending images and open uploads under it, so
   * requests at once cannot pass a limit together.
   */
  async lockSellerQuota(ownerId: string, tx: Prisma.TransactionClient): Promise<void> {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(7435631, hashtext(${ownerId}))`;
  }

  countPending(ownerId: string, tx: Tx = this.prisma): Promise<number> {
    return tx.catalogImage.count({ where: { ownerId, state: 'pending' } });
  }

  /**
   * Pending images unchanged since `cutoff` that never got a bundle and are not getting one: no
   * upload open (its own expiry handles it) or complete (the bundler reports on it), oldest first.
   */
  async stalePending(cutoff: Date, limit: number): Promise<string[]> {
    const rows = await this.prisma.$queryRaw<{ id: string }[]>`
      SELECT i.id FROM "catalog"."image" i
       WHERE i.state = 'pending' AND i.updated_at < ${cutoff}
         AND NOT EXISTS (SELECT 1 FROM "catalog"."upload" u WHERE u.image_id = i.id AND u.state IN ('open', 'complete'))
       ORDER BY i.updated_at, i.id
       LIMIT ${limit}`;
    return rows.map((r) => r.id);
  }

  /** {@link stalePending}'s rule for one image, locked to the end of the transaction unless someone holds it (SKIP LOCKED). */
  async lockIfStalePending(id: string, cutoff: Date, tx: Prisma.TransactionClient): Promise<CatalogImage | null> {
    const rows = await tx.$queryRaw<{ id: string }[]>`
      SELECT i.id FROM "catalog"."image" i
       WHERE i.id = ${id} AND i.state = 'pending' AND i.updated_at < ${cutoff}
         AND NOT EXISTS (SELECT 1 FROM "catalog"."upload" u WHERE u.image_id = i.id AND u.state IN ('open', 'complete'))
         FOR UPDATE OF i SKIP LOCKED`;
    if (!rows[0]) return null;
    return tx.catalogImage.findUnique({ where: { id } });
  }

  /** Returns the new count, or null for an unknown image. A launch passes its transaction. */
  async addLaunches(id: string, count: number, tx: Tx = this.prisma): Promise<number | null> {
    const rows = await tx.$queryRaw<{ launchCount: bigint }[]>`
      UPDATE "catalog"."image" SET launch_count = launch_count + ${count}, updated_at = now()
       WHERE id = ${id} RETURNING launch_count AS "launchCount"`;
    return rows[0] ? Number(rows[0].launchCount) : null;
  }
}
