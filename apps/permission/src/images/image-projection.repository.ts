import { Injectable } from '@nestjs/common';
import { PrismaClient, type PermissionImage, type Prisma } from '@imagemart/database';
import type { ImageChanged } from '@imagemart/contracts';
import type { ImageFacts } from '../decision/decision-cache.js';

type Tx = Prisma.TransactionClient | PrismaClient;

interface FactsRow {
  id: string;
  owner_id: string;
  state: string;
  product_codes: string[] | null;
  is_public: boolean;
  grantees: string[] | null;
}

/** The projection of the catalog's images (permission.image). */
@Injectable()
export class ImageProjectionRepository {
  constructor(private readonly prisma: PrismaClient) {}

  find(imageId: string, tx: Tx = this.prisma): Promise<PermissionImage | null> {
    return tx.permissionImage.findUnique({ where: { id: imageId } });
  }

  /**
   * Keeps `image` when it is newer than the row held (or there is none). Returns whether it did:
   * an older or repeated revision changes nothing.
   */
  async upsert(image: ImageChanged, tx: Tx = this.prisma): Promise<boolean> {
    const rows = await tx.$queryRaw<{ id: string }[]>`
      INSERT INTO "permission"."image" (id, owner_id, state, product_codes, revision, created_at, updated_at)
      VALUES (${image.imageId}, ${image.ownerId}, ${image.state}, ${image.productCodes}::varchar[], ${image.revision}, now(), now())
      ON CONFLICT (id) DO UPDATE
         SET owner_id = EXCLUDED.owner_id, state = EXCLUDED.state, product_codes = EXCLUDED.product_codes,
             revision = EXCLUDED.revision, updated_at = now()
       WHERE "image".revision < EXCLUDED.revision
      RETURNING id`;
    return rows.length > 0;
  }

  /** Everything the launch decision needs about one image, in one round trip; null when unknown. */
  async facts(imageId: string): Promise<ImageFacts | null> {
    const rows = await this.prisma.$queryRaw<FactsRow[]>`
      SELECT i.id, i.owner_id, i.state, i.product_codes, COALESCE(s.is_public, false) AS is_public,
             ARRAY(SELECT g.account_id FROM "permission"."launch_grant" g WHERE g.image_id = i.id) AS grantees
        FROM "permission"."image" i
        LEFT JOIN "permission"."launch_setting" s ON s.id = i.id
       WHERE i.id = ${imageId}`;
    const row = rows[0];
    if (!row) return null;
    return {
      imageId: row.id,
      ownerId: row.owner_id,
      state: row.state,
      productCodes: row.product_codes ?? [],
      isPublic: row.is_public,
      grantees: new Set(row.grantees ?? []),
    };
  }
}
