import { Inject, Injectable, Logger } from '@nestjs/common';
import Stripe from 'stripe';
import { PrismaClient } from '@imagemart/database';
import { decimalToMicros } from '@imagemart/contracts';
import { PricingService } from '../pricing/pricing.service.js';
import { STRIPE_CLIENT, hourlyMicrosToStripeCentsPerSecond, microsToStripeCents } from './stripe.client.js';
import { StripeRepository, type StripePriceKey, type StripePriceKind } from './stripe.repository.js';

/** Every Stripe call carries a key made of our ids, so any retry replays instead of repeating. */
const key = (...parts: string[]) => `imagemart:${parts.join(':')}`;

export interface SubscriptionPrices {
  monthlyFee: string;
  /** Null when the product has no sign-up fee. */
  signUpFee: string | null;
  /** The metered price of each instance type the product is offered on. */
  usage: { instanceType: string; price: string }[];
}

/** The meter event name of a product's usage on an instance type. */
export const usageEventName = (productCode: string, instanceType: string): string =>
  `imagemart_usage.${productCode}.${instanceType}`;

/**
 * Keeps Stripe in step with billing's records: one customer per buyer account, one product per
 * product code, a price per amount (Stripe prices are immutable, so a new amount is a new price
 * and the old one is deactivated), and a subscription per subscription, cancelled at period end
 * when ours is. Every step first looks for the Stripe id it stored, so running a sync again (a
 * retried job, a redelivered outbox row) does nothing new; every create carries an idempotency
 * key, so a call retried after a lost answer gets the object the first call made.
 */
@Injectable()
export class StripeSyncService {
  private readonly logger = new Logger(StripeSyncService.name);

  constructor(
    private readonly prisma: PrismaClient,
    private readonly links: StripeRepository,
    private readonly pricing: PricingService,
    @Inject(STRIPE_CLIENT) private readonly stripeClient: Stripe | null,
  ) {}

  private get stripe(): Stripe {
    if (!this.stripeClient) throw new Error('Stripe is not configured (STRIPE_SECRET_KEY)');
    return this.stripeClient;
  }

  /** Brings one subscription to Stripe as it is now. Safe to run any number of times. */
  async syncSubscription(subscriptionId: string): Promise<void> {
    const sub = await this.prisma.subscription.findUnique({ where: { id: subscriptionId } });
    if (!sub) {
      this.logger.warn(`Stripe sync: no subscription ${subscriptionId}`);
      return;
    }
    let link = await this.links.subscriptionLink(sub.id);
    if (!link) {
      // It ended before it reached Stripe: there is nothing to bill there.
      if (sub.status === 'canceled') return;
      const customer = await this.ensureCustomer(sub.accountId);
      const prices = await this.ensurePrices(sub.productCode);
      const nowS = Math.floor(Date.now() / 1000);
      const periodEndS = Math.floor(sub.currentPeriodEnd.getTime() / 1000);
      const created = await this.stripe.subscriptions.create(
        {
          customer,
          // The monthly fee, and each instance type's usage, metered in seconds (meter events).
          items: [{ price: prices.monthlyFee }, ...prices.usage.map((u) => ({ price: u.price }))],
          ...(prices.signUpFee ? { add_invoice_items: [{ price: prices.signUpFee }] } : {}),
          // DevPay's calendar: the first month prorated, then billed on the 1st (docs/pricing.md).
          ...(periodEndS > nowS
            ? { billing_cycle_anchor: periodEndS, proration_behavior: 'create_prorations' as const }
            : {}),
          metadata: { subscription_id: sub.id, account_id: sub.accountId, product_code: sub.productCode },
        },
        { idempotencyKey: key('subscription', sub.id, 'create') },
      );
      link = await this.links.saveSubscriptionLink({
        subscriptionId: sub.id,
        stripeId: created.id,
        accountId: sub.accountId,
        stripeStatus: created.status,
      });
    }
    if (sub.cancelAtPeriodEnd && !link.cancelAtPeriodEnd && sub.status !== 'canceled') {
      const updated = await this.stripe.subscriptions.update(
        link.stripeId,
        { cancel_at_period_end: true },
        { idempotencyKey: key('subscription', sub.id, 'cancel-at-period-end') },
      );
      await this.links.updateSubscriptionLink(sub.id, { cancelAtPeriodEnd: updated.cancel_at_period_end });
    }
  }

  /** The Stripe customer of a buyer account, created on first need. */
  async ensureCustomer(accountId: string): Promise<string> {
    const known = await this.links.customerOf(accountId);
    if (known) return known;
    const customer = await this.stripe.customers.create(
      { description: `ImageMart account ${accountId}`, metadata: { account_id: accountId } },
      { idempotencyKey: key('customer', accountId) },
    );
    return this.links.saveCustomer(accountId, customer.id);
  }

  /** The Stripe product of a product code: its id is the product code itself. */
  async ensureProduct(productCode: string): Promise<string> {
    const known = await this.links.productOf(productCode);
    if (known) return known;
    let id: string;
    try {
      id = (
        await this.stripe.products.create(
          { id: productCode, name: productCode, metadata: { product_code: productCode } },
          { idempotencyKey: key('product', productCode) },
        )
      ).id;
    } catch (err) {
      // Made earlier under a key Stripe has since forgotten (keys live 24 hours): it is ours.
      if (!(err instanceof Stripe.errors.StripeInvalidRequestError && err.code === 'resource_already_exists'))
        throw err;
      id = (await this.stripe.products.retrieve(productCode)).id;
    }
    return this.links.saveProduct(productCode, id);
  }

  /** The Stripe prices of the product's current monthly and sign-up fees and usage rates. */
  async ensurePrices(productCode: string): Promise<SubscriptionPrices> {
    const quote = (await this.pricing.quote([productCode])).products[productCode];
    if (!quote) throw new Error(`The product ${productCode} has no pricing`);
    const product = await this.ensureProduct(productCode);
    const currency = 'usd';
    const monthlyFee = await this.ensurePrice(product, {
      productCode,
      kind: 'monthly_fee',
      instanceType: '',
      currency,
      amount: quote.monthlyFee,
    });
    const signUpFee =
      decimalToMicros(quote.signUpFee) > 0n
        ? await this.ensurePrice(product, {
            productCode,
            kind: 'sign_up_fee',
            instanceType: '',
            currency,
            amount: quote.signUpFee,
          })
        : null;
    const usage: SubscriptionPrices['usage'] = [];
    for (const { instanceType, hourly } of quote.instanceTypes) {
      usage.push({
        instanceType,
        price: await this.ensurePrice(product, {
          productCode,
          kind: 'usage',
          instanceType,
          currency,
          amount: hourly,
        }),
      });
    }
    return { monthlyFee, signUpFee, usage };
  }

  /** The billing meter of a product's usage on an instance type: meter events sum seconds per customer. */
  async ensureMeter(productCode: string, instanceType: string): Promise<{ id: string; eventName: string }> {
    const known = await this.links.meterOf(productCode, instanceType);
    if (known) return { id: known.stripeId, eventName: known.eventName };
    const eventName = usageEventName(productCode, instanceType);
    const meter = await this.stripe.billing.meters.create(
      {
        display_name: `${productCode} on ${instanceType} (seconds)`,
        event_name: eventName,
        default_aggregation: { formula: 'sum' },
        customer_mapping: { type: 'by_id', event_payload_key: 'stripe_customer_id' },
        value_settings: { event_payload_key: 'value' },
      },
      { idempotencyKey: key('meter', productCode, instanceType) },
    );
    const row = await this.links.saveMeter({ productCode, instanceType, eventName, stripeId: meter.id });
    return { id: row.stripeId, eventName: row.eventName };
  }

  private async ensurePrice(product: string, price: StripePriceKey): Promise<string> {
    // The row is keyed by the exact amount: numeric(18,6) compares "5.00" and "5" alike.
    let row = await this.links.findPrice(price);
    if (!row) {
      const created = await this.stripe.prices.create(
        {
          product,
          currency: price.currency,
          unit_amount_decimal: Stripe.Decimal.from(
            price.kind === 'usage'
              ? hourlyMicrosToStripeCentsPerSecond(decimalToMicros(price.amount))
              : microsToStripeCents(decimalToMicros(price.amount)),
          ),
          ...(await this.recurringOf(price)),
          metadata: {
            product_code: price.productCode,
            kind: price.kind,
            ...(price.instanceType ? { instance_type: price.instanceType } : {}),
          },
        },
        {
          idempotencyKey: key(
            'price',
            price.productCode,
            price.kind,
            price.instanceType || '-',
            price.currency,
            price.amount,
          ),
        },
      );
      row = await this.links.savePrice(price, created.id);
    } else if (!row.active) {
      // Keyed by the row's version: a retry of this change replays, a later change is a new call.
      await this.stripe.prices.update(
        row.stripeId,
        { active: true },
        { idempotencyKey: key('price', row.stripeId, 'activate', String(row.updatedAt.getTime())) },
      );
      row = await this.links.setPriceActive(row.id, true);
    }
    // Earlier amounts of this fee: new subscriptions must not pick them up.
    for (const old of await this.links.otherActivePrices(
      price.productCode,
      price.kind,
      price.instanceType,
      row.id,
    )) {
      await this.stripe.prices.update(
        old.stripeId,
        { active: false },
        { idempotencyKey: key('price', old.stripeId, 'deactivate', String(old.updatedAt.getTime())) },
      );
      await this.links.setPriceActive(old.id, false);
    }
    return row.stripeId;
  }

  private async recurringOf(
    price: StripePriceKey,
  ): Promise<{ recurring?: Stripe.PriceCreateParams.Recurring }> {
    const kind: StripePriceKind = price.kind;
    if (kind === 'monthly_fee') return { recurring: { interval: 'month' } };
    if (kind === 'usage') {
      const meter = await this.ensureMeter(price.productCode, price.instanceType);
      return { recurring: { interval: 'month', usage_type: 'metered', meter: meter.id } };
    }
    return {};
  }
}
