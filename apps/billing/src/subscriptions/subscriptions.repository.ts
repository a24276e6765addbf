import { Injectable } from '@nestjs/common';
import { PrismaClient, withPrismaErrors, type Prisma, type Subscription } from '@imagemart/database';
import type { SubscriptionStatus } from '@imagemart/contracts';
import { ENTITLING_STATUSES } from './subscription.entitlement.js';

type Tx = Prisma.TransactionClient | PrismaClient;

export type { Subscription };

export interface NewSubscription {
  id: string;
  accountId: string;
  productCode: string;
  sellerId: string;
  currentPeriodStart: Date;
  currentPeriodEnd: Date;
  requestId: string | null;
  /** When it started: the invoices bill the sign-up fee and the prorated first month from it. */
  createdAt?: Date;
}

export interface SubscriptionCursor {
  createdAt: Date;
  id: string;
}

export type SubscriptionChange = Partial<
  Pick<Subscription, 'status' | 'cancelAtPeriodEnd' | 'currentPeriodStart' | 'currentPeriodEnd' | 'canceledAt' | 'endedAt' | 'cancelRequestId'>
>;

@Injectable()
export class SubscriptionsRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** Throws UniqueViolation on a taken id, or when the account already has a live subscription to the product. */
  create(tx: Prisma.TransactionClient, subscription: NewSubscription): Promise<Subscription> {
    return withPrismaErrors(() => tx.subscription.create({ data: subscription }));
  }

  findById(id: string, tx: Tx = this.prisma): Promise<Subscription | null> {
    return tx.subscription.findUnique({ where: { id } });
  }

  /** Reads the row and holds its lock until the transaction ends. */
  async lockById(tx: Prisma.TransactionClient, id: string): Promise<Subscription | null> {
    await tx.$queryRaw`SELECT id FROM "billing"."subscription" WHERE id = ${id} FOR UPDATE`;
    return tx.subscription.findUnique({ where: { id } });
  }

  /** The subscription of this account to this product that has not ended, if any. */
  findLive(accountId: string, productCode: string, tx: Tx = this.prisma): Promise<Subscription | null> {
    return tx.subscription.findFirst({ where: { accountId, productCode, status: { not: 'canceled' } } });
  }

  /** The subscription that the request `requestId` created, if it did. */
  findCreatedBy(accountId: string, productCode: string, requestId: string): Promise<Subscription | null> {
    return this.prisma.subscription.findFirst({ where: { accountId, productCode, requestId } });
  }

  /** Applies a change and adds one to the revision. */
  update(tx: Prisma.TransactionClient, id: string, change: SubscriptionChange): Promise<Subscription> {
    return tx.subscription.update({ where: { id }, data: { ...change, revision: { increment: 1 } } });
  }

  /** Newest first: (createdAt, id) descending, a stable order. */
  listByAccount(accountId: string, limit: number, after?: SubscriptionCursor, status?: SubscriptionStatus): Promise<Subscription[]> {
    return this.prisma.subscription.findMany({
      where: {
        accountId,
        ...(status ? { status } : {}),
        ...(after
          ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] }
          : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: limit,
    });
  }

  /**
   * Locks up to `limit` live subscriptions whose period ended by `now`, skipping rows another
   * replica holds, and returns their ids; the locks last until the transaction ends.
   */
  async lockDue(tx: Prisma.TransactionClient, now: Date, limit: number): Promise<string[]> {
    const rows = await tx.$queryRaw<{ id: string }[]>`
      SELECT id FROM "billing"."subscription"
       WHERE status IN ('active', 'past_due') AND current_period_end <= ${now}
       ORDER BY current_period_end, id
       LIMIT ${limit}
         FOR UPDATE SKIP LOCKED`;
    return rows.map((r) => r.id);
  }

  /** The account's subscriptions that entitle it, to any of these products. */
  entitling(accountId: string, productCodes: string[]): Promise<Subscription[]> {
    return this.prisma.subscription.findMany({
      where: { accountId, productCode: { in: productCodes }, status: { in: ENTITLING_STATUSES } },
    });
  }
}
