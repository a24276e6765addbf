import { Injectable } from '@nestjs/common';
import { Prisma, PrismaClient, withPrismaErrors, type CatalogUpload, type CatalogUploadPart } from '@imagemart/database';
import type { UploadBundle } from '@imagemart/contracts';

export type Tx = Prisma.TransactionClient | PrismaClient;

export type NewUpload = Pick<
  Prisma.CatalogUploadUncheckedCreateInput,
  'id' | 'imageId' | 'ownerId' | 'size' | 'sha256' | 'compression' | 'partSize' | 'partCount'
> & { bundle?: UploadBundle };

/** The catalog's upload sessions and their parts. */
@Injectable()
export class UploadsRepository {
  constructor(private readonly prisma: PrismaClient) {}

  findById(id: string, tx: Tx = this.prisma): Promise<CatalogUpload | null> {
    return tx.catalogUpload.findUnique({ where: { id } });
  }

  findByImageId(imageId: string, tx: Tx = this.prisma): Promise<CatalogUpload | null> {
    return tx.catalogUpload.findUnique({ where: { imageId } });
  }

  /** Locks the upload row for the rest of the transaction. */
  async lock(id: string, tx: Prisma.TransactionClient): Promise<CatalogUpload | null> {
    const rows = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM "catalog"."upload" WHERE id = ${id} FOR UPDATE`;
    if (!rows[0]) return null;
    return tx.catalogUpload.findUnique({ where: { id } });
  }

  create(upload: NewUpload, tx: Tx = this.prisma): Promise<CatalogUpload> {
    const { bundle, ...fields } = upload;
    return withPrismaErrors(() =>
      tx.catalogUpload.create({ data: { ...fields, state: 'open', ...(bundle ? { bundle } : {}) } }),
    );
  }

  /** The seller-made bundle an upload carries, or null for a raw image. */
  static bundleOf(upload: CatalogUpload): UploadBundle | null {
    return (upload.bundle as UploadBundle | null) ?? null;
  }

  update(id: string, data: Prisma.CatalogUploadUncheckedUpdateInput, tx: Tx = this.prisma): Promise<CatalogUpload> {
    return withPrismaErrors(() => tx.catalogUpload.update({ where: { id }, data }));
  }

  parts(uploadId: string, tx: Tx = this.prisma): Promise<CatalogUploadPart[]> {
    return tx.catalogUploadPart.findMany({ where: { uploadId }, orderBy: { partNumber: 'asc' } });
  }

  /** Records a stored part; a part recorded again is replaced. */
  putPart(part: { uploadId: string; partNumber: number; size: number; sha256: string }, tx: Tx = this.prisma): Promise<CatalogUploadPart> {
    const { uploadId, partNumber, size, sha256 } = part;
    return withPrismaErrors(() =>
      tx.catalogUploadPart.upsert({
        where: { uploadId_partNumber: { uploadId, partNumber } },
        create: { uploadId, partNumber, size, sha256 },
        update: { size, sha256 },
      }),
    );
  }

  async deleteParts(uploadId: string, tx: Tx = this.prisma): Promise<void> {
    await tx.catalogUploadPart.deleteMany({ where: { uploadId } });
  }

  /**
   * The seller's open uploads and their declared bytes together. Under `tx` the seller's quota
   * lock is taken first (see ImagesRepository.lockSellerQuota), so two uploads opened at once are
   * counted one after the other.
   */
  async openTotals(ownerId: string, tx: Tx = this.prisma): Promise<{ uploads: number; bytes: number }> {
    const rows = await tx.$queryRaw<{ uploads: number; bytes: bigint }[]>`
      SELECT count(*)::int AS uploads, COALESCE(sum(size), 0)::bigint AS bytes
        FROM "catalog"."upload" WHERE owner_id = ${ownerId} AND state = 'open'`;
    return { uploads: rows[0]?.uploads ?? 0, bytes: Number(rows[0]?.bytes ?? 0n) };
  }

  /** Open uploads with no progress (the upload or any of its parts written) since `cutoff`, oldest first. */
  async staleOpen(cutoff: Date, limit: number): Promise<string[]> {
    const rows = await this.prisma.$queryRaw<{ id: string }[]>`
      SELECT u.id FROM "catalog"."upload" u
       WHERE u.state = 'open' AND u.updated_at < ${cutoff}
         AND NOT EXISTS (SELECT 1 FROM "catalog"."upload_part" p WHERE p.upload_id = u.id AND p.updated_at >= ${cutoff})
       ORDER BY u.updated_at, u.id
       LIMIT ${limit}`;
    return rows.map((r) => r.id);
  }

  /**
   * Locks the upload for the rest of the transaction if it is still open without progress since
   * `cutoff` and no one else holds it (SKIP LOCKED: another replica sweeping it, or a part being
   * recorded); null otherwise.
   */
  async lockIfStale(id: string, cutoff: Date, tx: Prisma.TransactionClient): Promise<CatalogUpload | null> {
    const rows = await tx.$queryRaw<{ id: string }[]>`
      SELECT u.id FROM "catalog"."upload" u
       WHERE u.id = ${id} AND u.state = 'open' AND u.updated_at < ${cutoff}
         AND NOT EXISTS (SELECT 1 FROM "catalog"."upload_part" p WHERE p.upload_id = u.id AND p.updated_at >= ${cutoff})
         FOR UPDATE OF u SKIP LOCKED`;
    if (!rows[0]) return null;
    return tx.catalogUpload.findUnique({ where: { id } });
  }
}
