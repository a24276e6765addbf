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
}
