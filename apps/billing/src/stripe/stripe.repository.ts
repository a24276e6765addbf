import { Injectable } from '@nestjs/common';
import {
  PrismaClient,
  type Prisma,
  type StripeInvoice,
  type StripeMeter,
  type StripePrice,
  type StripeSubscription,
} from '@imagemart/database';

type Tx = Prisma.TransactionClient | PrismaClient;

export type { StripeInvoice, StripeMeter, StripePrice, StripeSubscription };

export type StripePriceKind = 'monthly_fee' | 'sign_up_fee' | 'usage';

export interface StripePriceKey {
  productCode: string;
  kind: StripePriceKind;
  /** '' for the fees. */
  instanceType: string;
  currency: string;
  /** Exact decimal string. */
  amount: string;
}

export interface StripeInvoiceState {
  stripeId: string;
  stripeSubscriptionId: string | null;
  stripeCustomerId: string | null;
  status: string;
  currency: string;
  amountDue: string;
  amountPaid: string;
  paidAt: Date | null;
  lastEventAt: Date;
}

/**
 * The Stripe ids of billing's records and what Stripe reported. Writes that record a Stripe object
 * just created are "insert, or keep the row already there": two runs of one sync (a retried job,
 * two replicas) both got the same object back from Stripe thanks to the idempotency key, so
 * whichever stores it first wins and the other finds the same id.
 */
@Injectable()
export class StripeRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async customerOf(accountId: string): Promise<string | null> {
    return (await this.prisma.stripeCustomer.findUnique({ where: { id: accountId } }))?.stripeId ?? null;
  }

  async saveCustomer(accountId: string, stripeId: string): Promise<string> {
    const row = await this.prisma.stripeCustomer.upsert({
      where: { id: accountId },
      create: { id: accountId, stripeId },
      update: {},
    });
    return row.stripeId;
  }

  async productOf(productCode: string): Promise<string | null> {
    return (await this.prisma.stripeProduct.findUnique({ where: { id: productCode } }))?.stripeId ?? null;
  }

  async saveProduct(productCode: string, stripeId: string): Promise<string> {
    const row = await this.prisma.stripeProduct.upsert({
      where: { id: productCode },
      create: { id: productCode, stripeId },
      update: {},
    });
    return row.stripeId;
  }

  findPrice(key: StripePriceKey): Promise<StripePrice | null> {
    return this.prisma.stripePrice.findUnique({
      where: { productCode_kind_instanceType_currency_amount: key },
    });
  }

  async savePrice(key: StripePriceKey, stripeId: string): Promise<StripePrice> {
    return this.prisma.stripePrice.upsert({
      where: { productCode_kind_instanceType_currency_amount: key },
      create: { ...key, stripeId },
      update: {},
    });
  }

  setPriceActive(id: string, active: boolean): Promise<StripePrice> {
    return this.prisma.stripePrice.update({ where: { id }, data: { active } });
  }

  /** The product's active prices of one kind and instance type other than `keepId`. */
  otherActivePrices(
    productCode: string,
    kind: StripePriceKind,
    instanceType: string,
    keepId: string,
  ): Promise<StripePrice[]> {
    return this.prisma.stripePrice.findMany({
      where: { productCode, kind, instanceType, active: true, id: { not: keepId } },
    });
  }

  meterOf(productCode: string, instanceType: string): Promise<StripeMeter | null> {
    return this.prisma.stripeMeter.findUnique({
      where: { productCode_instanceType: { productCode, instanceType } },
    });
  }

  saveMeter(meter: {
    productCode: string;
    instanceType: string;
    eventName: string;
    stripeId: string;
  }): Promise<StripeMeter> {
    return this.prisma.stripeMeter.upsert({
      where: {
        productCode_instanceType: { productCode: meter.productCode, instanceType: meter.instanceType },
      },
      create: meter,
      update: {},
    });
  }

  subscriptionLink(subscriptionId: string, tx: Tx = this.prisma): Promise<StripeSubscription | null> {
    return tx.stripeSubscription.findUnique({ where: { id: subscriptionId } });
  }

  async saveSubscriptionLink(
    link: { subscriptionId: string; stripeId: string; accountId: string; stripeStatus: string },
    tx: Tx = this.prisma,
  ): Promise<StripeSubscription> {
    const { subscriptionId, ...rest } = link;
    return tx.stripeSubscription.upsert({
      where: { id: subscriptionId },
      create: { id: subscriptionId, ...rest },
      update: {},
    });
  }

  /** The link of a Stripe subscription, locked until the transaction ends. */
  async lockSubscriptionLinkByStripeId(
    tx: Prisma.TransactionClient,
    stripeId: string,
  ): Promise<StripeSubscription | null> {
    await tx.$queryRaw`SELECT subscription_id FROM "billing"."stripe_subscription" WHERE stripe_id = ${stripeId} FOR UPDATE`;
    return tx.stripeSubscription.findUnique({ where: { stripeId } });
  }

  updateSubscriptionLink(
    subscriptionId: string,
    change: Partial<Pick<StripeSubscription, 'stripeStatus' | 'cancelAtPeriodEnd' | 'lastEventAt'>>,
    tx: Tx = this.prisma,
  ): Promise<StripeSubscription> {
    return tx.stripeSubscription.update({ where: { id: subscriptionId }, data: change });
  }

  /** Locks the invoice's row, if there is one. */
  async lockInvoice(tx: Prisma.TransactionClient, stripeId: string): Promise<StripeInvoice | null> {
    await tx.$queryRaw`SELECT stripe_id FROM "billing"."stripe_invoice" WHERE stripe_id = ${stripeId} FOR UPDATE`;
    return tx.stripeInvoice.findUnique({ where: { id: stripeId } });
  }

  saveInvoice(tx: Prisma.TransactionClient, state: StripeInvoiceState): Promise<StripeInvoice> {
    const { stripeId, ...rest } = state;
    return tx.stripeInvoice.upsert({
      where: { id: stripeId },
      create: { id: stripeId, ...rest },
      update: rest,
    });
  }

  /** Invoices of a Stripe subscription whose payment failed and that are not paid since. */
  unpaidFailedInvoices(tx: Prisma.TransactionClient, stripeSubscriptionId: string): Promise<number> {
    return tx.stripeInvoice.count({ where: { stripeSubscriptionId, status: 'payment_failed' } });
  }

  /**
   * Claims a webhook event id for this transaction. False when the id was handled before (or is
   * being handled by a transaction that then commits): the event must change nothing.
   */
  async claimEvent(
    tx: Prisma.TransactionClient,
    event: { id: string; type: string; created: Date },
  ): Promise<boolean> {
    const inserted = await tx.$executeRaw`
      INSERT INTO "billing"."stripe_event" (id, type, stripe_created_at, outcome, created_at, updated_at)
      VALUES (${event.id}, ${event.type}, ${event.created}, 'pending', now(), now())
      ON CONFLICT (id) DO NOTHING`;
    return inserted === 1;
  }

  async recordEventOutcome(tx: Prisma.TransactionClient, id: string, outcome: string): Promise<void> {
    await tx.stripeEvent.update({ where: { id }, data: { outcome } });
  }
}
