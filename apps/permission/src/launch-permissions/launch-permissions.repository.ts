import { Injectable } from '@nestjs/common';
import {
  Prisma,
  PrismaClient,
  type PermissionLaunchGrant,
  type PermissionShareState,
} from '@imagemart/database';

type Tx = Prisma.TransactionClient | PrismaClient;

export interface LaunchSetting {
  isPublic: boolean;
  revision: number;
}

export interface SharedImageRow {
  image_id: string;
  owner_id: string;
  image_state: string;
  product_codes: string[] | null;
  share_state: PermissionShareState;
  created_at: Date;
  updated_at: Date;
}

export interface SharedImageCursor {
  createdAt: Date;
  imageId: string;
}

/** Launch permissions: the per-image setting (public flag, revision) and the grants to accounts. */
@Injectable()
export class LaunchPermissionsRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * The image's setting, created private at revision 0 if it has none, and locked until the
   * transaction ends: every change of an image's launch permissions or shares goes through here,
   * so they are applied one at a time and each gets the next revision.
   */
  async lockSetting(tx: Prisma.TransactionClient, imageId: string): Promise<LaunchSetting> {
    await tx.$executeRaw`
      INSERT INTO "permission"."launch_setting" (id, is_public, revision, created_at, updated_at)
      VALUES (${imageId}, false, 0, now(), now())
      ON CONFLICT (id) DO NOTHING`;
    const rows = await tx.$queryRaw<{ is_public: boolean; revision: number }[]>`
      SELECT is_public, revision FROM "permission"."launch_setting" WHERE id = ${imageId} FOR UPDATE`;
    const row = rows[0];
    if (!row) throw new Error(`launch_setting ${imageId} vanished inside its transaction`);
    return { isPublic: row.is_public, revision: row.revision };
  }

  async findSetting(imageId: string, tx: Tx = this.prisma): Promise<LaunchSetting> {
    const row = await tx.permissionLaunchSetting.findUnique({ where: { id: imageId } });
    return { isPublic: row?.isPublic ?? false, revision: row?.revision ?? 0 };
  }

  async saveSetting(tx: Prisma.TransactionClient, imageId: string, setting: LaunchSetting): Promise<void> {
    await tx.permissionLaunchSetting.update({
      where: { id: imageId },
      data: { isPublic: setting.isPublic, revision: setting.revision },
    });
  }

  grants(imageId: string, tx: Tx = this.prisma): Promise<PermissionLaunchGrant[]> {
    return tx.permissionLaunchGrant.findMany({ where: { imageId }, orderBy: { accountId: 'asc' } });
  }

  findGrant(imageId: string, accountId: string, tx: Tx = this.prisma): Promise<PermissionLaunchGrant | null> {
    return tx.permissionLaunchGrant.findUnique({ where: { imageId_accountId: { imageId, accountId } } });
  }

  async addGrants(tx: Prisma.TransactionClient, imageId: string, accountIds: string[]): Promise<void> {
    if (accountIds.length === 0) return;
    await tx.permissionLaunchGrant.createMany({
      data: accountIds.map((accountId) => ({ imageId, accountId, shareState: 'pending' as const })),
      skipDuplicates: true,
    });
  }

  async removeGrants(tx: Prisma.TransactionClient, imageId: string, accountIds?: string[]): Promise<void> {
    if (accountIds?.length === 0) return;
    await tx.permissionLaunchGrant.deleteMany({
      where: accountIds ? { imageId, accountId: { in: accountIds } } : { imageId },
    });
  }

  async setShareState(
    tx: Prisma.TransactionClient,
    imageId: string,
    accountId: string,
    shareState: PermissionShareState,
  ): Promise<void> {
    await tx.permissionLaunchGrant.update({
      where: { imageId_accountId: { imageId, accountId } },
      data: { shareState },
    });
  }

  /**
   * Images shared with `accountId`, oldest share first: available ones only, as the catalog shows
   * another account's image only while it is available (pending, failed, deregistered: 404 there).
   */
  listSharedWith(
    accountId: string,
    state: PermissionShareState | undefined,
    limit: number,
    after?: SharedImageCursor,
  ): Promise<SharedImageRow[]> {
    const stateFilter = state ? Prisma.sql`AND g.share_state = ${state}::"permission"."PermissionShareState"` : Prisma.empty;
    const afterFilter = after
      ? Prisma.sql`AND (g.created_at, g.image_id) > (${after.createdAt}::timestamptz, ${after.imageId})`
      : Prisma.empty;
    return this.prisma.$queryRaw<SharedImageRow[]>`
      SELECT g.image_id, i.owner_id, i.state AS image_state, i.product_codes, g.share_state, g.created_at, g.updated_at
        FROM "permission"."launch_grant" g
        JOIN "permission"."image" i ON i.id = g.image_id
       WHERE g.account_id = ${accountId} AND i.state = 'available' ${stateFilter} ${afterFilter}
       ORDER BY g.created_at, g.image_id
       LIMIT ${limit}`;
  }
}
