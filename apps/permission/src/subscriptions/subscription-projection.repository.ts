import { Injectable } from '@nestjs/common';
import { PrismaClient } from '@imagemart/database';
import type { SubscriptionChanged } from '@imagemart/contracts';

/** The projection of billing's subscriptions (permission.subscription). */
@Injectable()
export class SubscriptionProjectionRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** Keeps `sub` when it is newer than the row held (or there is none); returns whether it did. */
  async upsert(sub: SubscriptionChanged): Promise<boolean> {
    const rows = await this.prisma.$queryRaw<{ id: string }[]>`
      INSERT INTO "permission"."subscription" (id, account_id, product_code, status, entitled, revision, created_at, updated_at)
      VALUES (${sub.subscriptionId}, ${sub.accountId}, ${sub.productCode}, ${sub.status}, ${sub.entitled}, ${sub.revision}, now(), now())
      ON CONFLICT (id) DO UPDATE
         SET account_id = EXCLUDED.account_id, product_code = EXCLUDED.product_code, status = EXCLUDED.status,
             entitled = EXCLUDED.entitled, revision = EXCLUDED.revision, updated_at = now()
       WHERE "subscription".revision < EXCLUDED.revision
      RETURNING id`;
    return rows.length > 0;
  }

  /** The product codes `accountId` holds an entitling subscription to. */
  async entitledProductCodes(accountId: string): Promise<string[]> {
    const rows = await this.prisma.permissionSubscription.findMany({
      where: { accountId, entitled: true },
      select: { productCode: true },
      distinct: ['productCode'],
    });
    return rows.map((r) => r.productCode);
  }
}
