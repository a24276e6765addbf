import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '@imagemart/config';
import { BillingPattern, QueueName, type StripeEventResult } from '@imagemart/contracts';
import { OutboxRelay } from '@imagemart/database';
import { QueueRegistry, sendRpc } from '@imagemart/messaging';
import {
  createTestDatabase,
  createTestRedisPrefix,
  startStripeTestServer,
  stripeTestEvent,
  waitFor,
  type StripeObject,
  type StripeTestServer,
  type TestDatabase,
  type TestRedisPrefix,
} from '@imagemart/testing';
import { billingConfigSchema } from '../billing.config.js';
import { InvoicesService } from '../invoices/invoices.service.js';
import { PricingService } from '../pricing/pricing.service.js';
import { SubscriptionsService } from '../subscriptions/subscriptions.service.js';
import {
  buyer,
  inRequest,
  newProductCode,
  registerProduct,
  seller,
  startBillingTestEnv,
  type BillingTestEnv,
} from '../testing/billing-test-env.fixture.js';
import { instanceEvent, newInstanceId } from '../usage/usage-event.fixture.js';
import { UsageRepository } from '../usage/usage.repository.js';
import { StripeSyncQueue } from './stripe-sync.queue.js';
import { StripeSyncService } from './stripe-sync.service.js';
import { STRIPE_USAGE_JOB, type StripeUsageJob } from './stripe-usage.job.js';
import { StripeUsageReporter } from './stripe-usage.reporter.js';

/**
 * Billing with Stripe configured, against the local Stripe-compatible server driven by the real
 * SDK: the sync (customers, products, prices, subscriptions) with idempotency keys under failures,
 * the durable path (outbox → queue → worker), and webhook events applied once and in any order.
 */

let db: TestDatabase;
let redis: TestRedisPrefix;
let stripe: StripeTestServer;
let env: BillingTestEnv;
let subscriptions: SubscriptionsService;
let pricing: PricingService;
let sync: StripeSyncService;
const owner = seller();

beforeAll(async () => {
  db = await createTestDatabase('billing-stripe');
  redis = createTestRedisPrefix('billing-stripe');
  stripe = await startStripeTestServer();
  const config = loadConfig(billingConfigSchema, {
    ...stripe.env(),
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.prefix,
    // The SDK's backoff is 0.5 s, 1 s, …: two retries keep the failure tests short.
    STRIPE_MAX_NETWORK_RETRIES: '2',
  });
  env = await startBillingTestEnv({
    prisma: db.prisma,
    redisUrl: redis.url,
    prefix: redis.prefix,
    serveBilling: true,
    config,
  });
  subscriptions = env.moduleRef.get(SubscriptionsService);
  pricing = env.moduleRef.get(PricingService);
  sync = env.moduleRef.get(StripeSyncService);
}, 30_000);

afterAll(async () => {
  await env?.close();
  await stripe?.close();
  await redis?.cleanup();
  await db?.drop();
});

beforeEach(() => {
  stripe.failNext(0, '500'); // nothing pending from an earlier test
});

async function pricedProduct(
  prices: { monthlyFee: string; signUpFee: string } = { monthlyFee: '4.99', signUpFee: '10' },
): Promise<string> {
  const code = newProductCode();
  registerProduct(code, owner.accountId);
  await pricing.setProductPricing(owner, code, {
    currency: 'USD',
    instanceTypes: [{ instanceType: 't3.micro', markup: { amount: '0.01' } }],
    ...prices,
  });
  return code;
}

let requests = 0;
const subscribe = (accountId: string, code: string, now?: Date) =>
  inRequest(`req-stripe-${++requests}`, () => subscriptions.create(buyer(accountId), code, now));

const stripeSubscriptionsOf = (subscriptionId: string) =>
  stripe
    .objects('subscription')
    .filter((s) => (s.metadata as Record<string, string>).subscription_id === subscriptionId);
const customersOf = (accountId: string) =>
  stripe.objects('customer').filter((c) => (c.metadata as Record<string, string>).account_id === accountId);
const requestsFor = (pattern: RegExp) => stripe.requests.filter((r) => pattern.test(`${r.method} ${r.path}`));

describe('keeping Stripe in step', () => {
  it('creates the customer, product, prices and subscription once, however often the sync runs', async () => {
    const code = await pricedProduct();
    const me = buyer();
    const sub = await subscribe(me.accountId, code, new Date(Date.now() - 1000));

    await sync.syncSubscription(sub.id);
    await sync.syncSubscription(sub.id);
    await Promise.all([sync.syncSubscription(sub.id), sync.syncSubscription(sub.id)]);

    const [customer] = customersOf(me.accountId);
    expect(customersOf(me.accountId)).toHaveLength(1);
    expect(stripe.get(code)).toMatchObject({ object: 'product', id: code });
    const prices = stripe.objects('price').filter((p) => p.product === code);
    expect(
      prices
        .map((p) => [
          p.type,
          (p.recurring as { usage_type?: string } | null)?.usage_type ?? null,
          p.unit_amount_decimal,
        ])
        .sort(),
    ).toEqual([
      ['one_time', null, '1000'], // the sign-up fee, 10.00
      ['recurring', 'licensed', '499'], // the monthly fee, 4.99
      ['recurring', 'metered', '0.000566666667'], // t3.micro: 0.0104 + 0.01 per hour, per second in cents
    ]);
    const [meter] = stripe.objects('billing.meter');
    expect(
      stripe.objects('billing.meter').filter((m) => m.event_name === `imagemart_usage.${code}.t3.micro`),
    ).toHaveLength(1);
    expect(prices.find((p) => (p.recurring as { meter?: string } | null)?.meter)).toBeDefined();
    expect(meter).toBeDefined();
    const created = stripeSubscriptionsOf(sub.id);
    expect(created).toHaveLength(1);
    // The monthly fee, and t3.micro's usage, metered.
    expect(
      (created[0].items as { data: { price: { id: string } }[] }).data.map((i) => i.price.id).sort(),
    ).toEqual(
      prices
        .filter((p) => p.type === 'recurring')
        .map((p) => p.id)
        .sort(),
    );
    expect(created[0]).toMatchObject({
      customer: customer.id,
      status: 'active',
      // DevPay's calendar: the first period ends at the start of next month, prorated.
      billing_cycle_anchor: Date.parse(sub.currentPeriodEnd) / 1000,
      proration_behavior: 'create_prorations',
      metadata: { subscription_id: sub.id, account_id: me.accountId, product_code: code },
    });
    const link = await db.prisma.stripeSubscription.findUniqueOrThrow({ where: { id: sub.id } });
    expect(link).toMatchObject({ stripeId: created[0].id, accountId: me.accountId, stripeStatus: 'active' });
    // Every create carried a key made of our ids.
    const create = requestsFor(/^POST \/v1\/subscriptions$/).find(
      (r) => (r.params.metadata as Record<string, string>).subscription_id === sub.id,
    );
    expect(create?.idempotencyKey).toBe(`imagemart:subscription:${sub.id}:create`);

    // A second subscription of the same buyer reuses the customer, the product and its prices.
    const other = await subscribe(me.accountId, await pricedProduct({ monthlyFee: '1', signUpFee: '0' }));
    await sync.syncSubscription(other.id);
    expect(customersOf(me.accountId)).toHaveLength(1);
    // No sign-up fee: no one-time price, no invoice item.
    expect(stripeSubscriptionsOf(other.id)[0]?.items).toBeDefined();
    expect(requestsFor(/^POST \/v1\/subscriptions$/).at(-1)?.params.add_invoice_items).toBeUndefined();
  });

  it('creates each object once when requests fail with 500s or lose their answer, thanks to the idempotency keys', async () => {
    const code = await pricedProduct();
    const me = buyer();
    const sub = await subscribe(me.accountId, code);
    stripe.failNext(2, '500', /^POST \/v1\/customers$/);
    stripe.failNext(1, 'drop-after', /^POST \/v1\/products$/);
    stripe.failNext(1, 'drop', /^POST \/v1\/prices$/);
    stripe.failNext(2, 'drop-after', /^POST \/v1\/subscriptions$/);

    await sync.syncSubscription(sub.id);

    expect(customersOf(me.accountId)).toHaveLength(1);
    expect(stripe.objects('product').filter((p) => p.id === code)).toHaveLength(1);
    expect(stripe.objects('price').filter((p) => p.product === code)).toHaveLength(3);
    expect(stripeSubscriptionsOf(sub.id)).toHaveLength(1);
    // The subscription's create reached Stripe three times: it took effect once, then was replayed.
    const tries = requestsFor(/^POST \/v1\/subscriptions$/).filter(
      (r) => r.idempotencyKey === `imagemart:subscription:${sub.id}:create`,
    );
    expect(tries.map((r) => [r.failed, r.replayed])).toEqual([
      ['drop-after', false],
      ['drop-after', true],
      [null, true],
    ]);
  });

  it('creates nothing twice when a sync gives up and its job runs again', async () => {
    const code = await pricedProduct();
    const me = buyer();
    const sub = await subscribe(me.accountId, code);
    // Every answer lost, more often than the SDK retries: the first run fails after Stripe made it.
    stripe.failNext(3, 'drop-after', /^POST \/v1\/subscriptions$/);
    await expect(sync.syncSubscription(sub.id)).rejects.toThrow();
    expect(await db.prisma.stripeSubscription.count({ where: { id: sub.id } })).toBe(0);

    await sync.syncSubscription(sub.id);
    expect(stripeSubscriptionsOf(sub.id)).toHaveLength(1);
    const link = await db.prisma.stripeSubscription.findUniqueOrThrow({ where: { id: sub.id } });
    expect(link.stripeId).toBe(stripeSubscriptionsOf(sub.id)[0].id);
  });

  it('cancels at the period end in Stripe when the buyer cancels, once', async () => {
    const code = await pricedProduct();
    const me = buyer();
    const sub = await subscribe(me.accountId, code);
    await sync.syncSubscription(sub.id);
    await inRequest('req-stripe-cancel', () => subscriptions.cancel(me, sub.id));
    stripe.failNext(1, 'drop-after', /^POST \/v1\/subscriptions\/sub_/);
    await sync.syncSubscription(sub.id);
    await sync.syncSubscription(sub.id);

    const [remote] = stripeSubscriptionsOf(sub.id);
    expect(remote).toMatchObject({ status: 'active', cancel_at_period_end: true });
    const updates = requestsFor(new RegExp(`^POST /v1/subscriptions/${remote.id}$`));
    expect(updates.map((u) => [u.idempotencyKey, u.replayed])).toEqual([
      [`imagemart:subscription:${sub.id}:cancel-at-period-end`, false],
      [`imagemart:subscription:${sub.id}:cancel-at-period-end`, true],
    ]);
  });

  it('moves to a new price when the product is repriced, and deactivates the old one', async () => {
    const code = await pricedProduct({ monthlyFee: '5', signUpFee: '0' });
    const first = await sync.ensurePrices(code);
    await pricing.setProductPricing(owner, code, {
      currency: 'USD',
      instanceTypes: [{ instanceType: 't3.micro', markup: { amount: '0.01' } }],
      monthlyFee: '7.25',
      signUpFee: '0',
    });
    const second = await sync.ensurePrices(code);
    expect(second.monthlyFee).not.toBe(first.monthlyFee);
    expect(stripe.get(first.monthlyFee)).toMatchObject({ active: false, unit_amount_decimal: '500' });
    expect(stripe.get(second.monthlyFee)).toMatchObject({ active: true, unit_amount_decimal: '725' });
    // Back to the first amount: its price is active again, no third price is made.
    await pricing.setProductPricing(owner, code, {
      currency: 'USD',
      instanceTypes: [{ instanceType: 't3.micro', markup: { amount: '0.01' } }],
      monthlyFee: '5.00',
      signUpFee: '0',
    });
    expect((await sync.ensurePrices(code)).monthlyFee).toBe(first.monthlyFee);
    expect(stripe.get(first.monthlyFee)?.active).toBe(true);
    expect(stripe.get(second.monthlyFee)?.active).toBe(false);
    expect(
      stripe
        .objects('price')
        .filter(
          (p) =>
            p.product === code &&
            p.type === 'recurring' &&
            (p.recurring as { usage_type: string }).usage_type === 'licensed',
        ),
    ).toHaveLength(2);
  });

  it('gets there on its own: the change writes a job to the outbox, the relay queues it, the worker syncs', async () => {
    const code = await pricedProduct();
    const me = buyer();
    const sub = await subscribe(me.accountId, code);
    const jobs = await db.prisma.billingOutboxEvent.findMany({ where: { queue: QueueName.stripeSync } });
    expect(
      jobs.filter((j) => (j.payload as { subscriptionId: string }).subscriptionId === sub.id),
    ).toHaveLength(1);

    const queues = new QueueRegistry({ url: redis.url, prefix: redis.prefix });
    const relay = new OutboxRelay({
      prisma: db.prisma,
      schema: 'billing',
      queues: (name) => queues.get(name),
      intervalMs: 50,
    });
    relay.start();
    try {
      const [remote] = await waitFor(
        () => (stripeSubscriptionsOf(sub.id).length ? stripeSubscriptionsOf(sub.id) : undefined),
        {
          what: 'the worker to create the Stripe subscription',
        },
      );
      expect(remote).toMatchObject({ status: 'active' });
      await inRequest('req-stripe-cancel-2', () => subscriptions.cancel(me, sub.id));
      await waitFor(() => stripe.get(remote.id)?.cancel_at_period_end === true, {
        what: 'the worker to cancel at period end',
      });
    } finally {
      await relay.stop();
      await queues.close();
    }
  });
});

describe('webhook events (billing.stripe.event)', () => {
  let seq = 0;
  const base = Math.floor(Date.now() / 1000);
  const deliver = (event: ReturnType<typeof stripeTestEvent>) =>
    sendRpc<StripeEventResult>(env.billing!, BillingPattern.stripeEvent, { event });

  /** A subscription that reached Stripe, with its Stripe object. */
  async function synced(): Promise<{ id: string; remote: StripeObject; accountId: string }> {
    const me = buyer();
    const sub = await subscribe(me.accountId, await pricedProduct());
    await sync.syncSubscription(sub.id);
    return { id: sub.id, remote: stripeSubscriptionsOf(sub.id)[0], accountId: me.accountId };
  }
  const invoice = (remote: StripeObject, id = `in_test${++seq}`, extra: Record<string, unknown> = {}) => ({
    id,
    object: 'invoice',
    customer: remote.customer,
    currency: 'usd',
    amount_due: 1499,
    amount_paid: 0,
    status: 'open',
    parent: { type: 'subscription_details', subscription_details: { subscription: remote.id } },
    ...extra,
  });
  const statusOf = async (id: string) =>
    (await db.prisma.subscription.findUniqueOrThrow({ where: { id } })).status;
  const revisionOf = async (id: string) =>
    (await db.prisma.subscription.findUniqueOrThrow({ where: { id } })).revision;

  it('marks the subscription past_due when a payment fails, and active again when the invoice is paid', async () => {
    const { id, remote } = await synced();
    const inv = invoice(remote);
    expect(
      await deliver(stripeTestEvent('invoice.payment_failed', inv, { created: base + 10 })),
    ).toMatchObject({ outcome: 'applied' });
    expect(await statusOf(id)).toBe('past_due');
    const events = await db.prisma.billingOutboxEvent.findMany({
      where: { type: 'billing.subscription.changed' },
      orderBy: { createdAt: 'asc' },
    });
    expect(
      events
        .filter((e) => (e.payload as { subscriptionId: string }).subscriptionId === id)
        .map((e) => (e.payload as { status: string }).status),
    ).toEqual(['active', 'past_due']);
    expect(await db.prisma.stripeInvoice.findUniqueOrThrow({ where: { id: inv.id } })).toMatchObject({
      status: 'payment_failed',
      stripeSubscriptionId: remote.id,
    });

    await deliver(
      stripeTestEvent('invoice.paid', { ...inv, status: 'paid', amount_paid: 1499 }, { created: base + 20 }),
    );
    expect(await statusOf(id)).toBe('active');
    const row = await db.prisma.stripeInvoice.findUniqueOrThrow({ where: { id: inv.id } });
    expect(row).toMatchObject({ status: 'paid', currency: 'USD' });
    expect(row.amountPaid.toString()).toBe('14.99');
  });

  it('applies an event once: the same event id again changes nothing', async () => {
    const { id, remote } = await synced();
    const failed = stripeTestEvent('invoice.payment_failed', invoice(remote), { created: base + 10 });
    expect((await deliver(failed)).outcome).toBe('applied');
    const revision = await revisionOf(id);
    // Paid in between; the failure redelivered must not make it past_due again.
    await deliver(
      stripeTestEvent(
        'invoice.paid',
        { ...invoice(remote, (failed.data.object as { id: string }).id), status: 'paid' },
        { created: base + 20 },
      ),
    );
    expect(await statusOf(id)).toBe('active');
    const results = await Promise.all([deliver(failed), deliver(failed)]);
    expect(results.map((r) => r.outcome)).toEqual(['duplicate', 'duplicate']);
    expect(await statusOf(id)).toBe('active');
    expect(await revisionOf(id)).toBe(revision + 1);
    expect(await db.prisma.stripeEvent.findUniqueOrThrow({ where: { id: failed.id } })).toMatchObject({
      outcome: 'applied',
      type: 'invoice.payment_failed',
    });
  });

  it('leaves an invoice paid when its payment_failed arrives after its paid', async () => {
    const { id, remote } = await synced();
    const inv = invoice(remote);
    // Stripe sent the failure first (t+10) and the success after (t+20); they arrive the other way round.
    expect(
      (
        await deliver(
          stripeTestEvent(
            'invoice.paid',
            { ...inv, status: 'paid', amount_paid: 1499 },
            { created: base + 20 },
          ),
        )
      ).outcome,
    ).toBe('applied');
    expect(
      (await deliver(stripeTestEvent('invoice.payment_failed', inv, { created: base + 10 }))).outcome,
    ).toBe('stale');
    expect(await statusOf(id)).toBe('active');
    expect((await db.prisma.stripeInvoice.findUniqueOrThrow({ where: { id: inv.id } })).status).toBe('paid');
    // Even a failure stamped later cannot unpay a paid invoice.
    expect(
      (await deliver(stripeTestEvent('invoice.payment_failed', inv, { created: base + 30 }))).outcome,
    ).toBe('stale');
    expect(await statusOf(id)).toBe('active');
  });

  it('follows customer.subscription.updated and .deleted, ignoring an older state that arrives late', async () => {
    const { id, remote } = await synced();
    const updated = (extra: Record<string, unknown>, created: number) =>
      stripeTestEvent('customer.subscription.updated', { ...remote, ...extra }, { created });

    expect((await deliver(updated({ status: 'past_due' }, base + 10))).outcome).toBe('applied');
    expect(await statusOf(id)).toBe('past_due');
    expect(
      (
        await deliver(
          updated({ status: 'active', cancel_at_period_end: true, canceled_at: base + 30 }, base + 30),
        )
      ).outcome,
    ).toBe('applied');
    const row = await db.prisma.subscription.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({
      status: 'active',
      cancelAtPeriodEnd: true,
      canceledAt: new Date((base + 30) * 1000),
    });
    // The past_due of t+20 arrives after the state of t+30: stale.
    expect((await deliver(updated({ status: 'past_due' }, base + 20))).outcome).toBe('stale');
    expect(await statusOf(id)).toBe('active');

    const ended = stripeTestEvent(
      'customer.subscription.deleted',
      { ...remote, status: 'canceled', ended_at: base + 40 },
      { created: base + 40 },
    );
    expect((await deliver(ended)).outcome).toBe('applied');
    expect(await db.prisma.subscription.findUniqueOrThrow({ where: { id } })).toMatchObject({
      status: 'canceled',
      endedAt: new Date((base + 40) * 1000),
    });
    // Nothing brings a canceled subscription back.
    await deliver(updated({ status: 'active' }, base + 50));
    expect(await statusOf(id)).toBe('canceled');
    expect((await db.prisma.stripeSubscription.findUniqueOrThrow({ where: { id: id } })).lastEventAt).toEqual(
      new Date((base + 50) * 1000),
    );
  });

  it('links a subscription of ours whose Stripe id was never stored, by its metadata', async () => {
    const me = buyer();
    const sub = await subscribe(me.accountId, await pricedProduct());
    const remote = {
      id: 'sub_notstoredyet0001',
      object: 'subscription',
      status: 'past_due',
      cancel_at_period_end: false,
      metadata: { subscription_id: sub.id },
    };
    expect(
      (await deliver(stripeTestEvent('customer.subscription.updated', remote, { created: base + 5 })))
        .outcome,
    ).toBe('applied');
    expect(await statusOf(sub.id)).toBe('past_due');
    expect((await db.prisma.stripeSubscription.findUniqueOrThrow({ where: { id: sub.id } })).stripeId).toBe(
      remote.id,
    );
  });

  it('records events it does not handle, and those about subscriptions it does not know, without changing anything', async () => {
    expect(
      (await deliver(stripeTestEvent('charge.refunded', { id: 'ch_1', object: 'charge' }))).outcome,
    ).toBe('ignored');
    const foreign = { id: 'sub_foreign0000001', object: 'subscription', status: 'canceled', metadata: {} };
    expect((await deliver(stripeTestEvent('customer.subscription.deleted', foreign))).outcome).toBe('stale');
    await expect(
      sendRpc(env.billing!, BillingPattern.stripeEvent, { event: { id: 'evt_x' } }),
    ).rejects.toMatchObject({ code: 'InvalidParameterValue' });
  });
});

describe('usage as meter events', () => {
  it("sends a buyer's usage once per identifier, even when the answer is lost", async () => {
    const code = await pricedProduct();
    const me = buyer();
    const sub = await subscribe(me.accountId, code);
    await sync.syncSubscription(sub.id);
    const reporter = env.moduleRef.get(StripeUsageReporter);
    const usage = {
      accountId: me.accountId,
      productCode: code,
      instanceType: 't3.micro',
      seconds: 5400n,
      identifier: `i-0123456789abcdef0:2026-12:${code}`,
      timestamp: new Date(),
    };

    stripe.failNext(1, 'drop-after', /^POST \/v1\/billing\/meter_events$/);
    expect(await reporter.report(usage)).toBe('sent');
    expect(await reporter.report(usage)).toBe('sent'); // the same key: a replay
    // The same usage with another value is a conflict, not a second count.
    await expect(reporter.report({ ...usage, seconds: 1n })).rejects.toMatchObject({
      type: 'StripeIdempotencyError',
    });
    const events = stripe.objects('billing.meter_event').filter((e) => e.identifier === usage.identifier);
    expect(events).toHaveLength(1);

    // Counted earlier under a key Stripe has forgotten: the identifier still counts it once.
    const earlier = { ...usage, identifier: `${usage.identifier}:b` };
    await stripe.client().billing.meterEvents.create({
      event_name: `imagemart_usage.${code}.t3.micro`,
      identifier: earlier.identifier,
      payload: { stripe_customer_id: customersOf(me.accountId)[0].id, value: '5400' },
    });
    expect(await reporter.report(earlier)).toBe('duplicate');
    expect(
      stripe.objects('billing.meter_event').filter((e) => e.identifier === earlier.identifier),
    ).toHaveLength(1);
    const [customer] = customersOf(me.accountId);
    expect(events[0]).toMatchObject({
      event_name: `imagemart_usage.${code}.t3.micro`,
      payload: { stripe_customer_id: customer.id, value: '5400' },
    });

    // A buyer with no Stripe customer (free images only) has nothing billed there.
    expect(await reporter.report({ ...usage, accountId: buyer().accountId, identifier: 'other' })).toBe(
      'skipped',
    );
  });
});

describe('usage of a closed month', () => {
  // October 2026, closed on 1 November at 02:00 (the usual hour of grace past).
  const month = '2026-10';
  const closedAt = new Date('2026-11-01T02:00:00Z');
  const monthEnd = Date.parse('2026-11-01T00:00:00Z') / 1000;
  const meterEvents = (identifier: string) =>
    stripe.objects('billing.meter_event').filter((e) => e.identifier === identifier);
  const usageJobs = async (accountId: string) =>
    (await db.prisma.billingOutboxEvent.findMany({ where: { type: STRIPE_USAGE_JOB } }))
      .map((row) => row.payload as unknown as StripeUsageJob)
      .filter((job) => job.accountId === accountId);

  /** Runs the outbox relay (and so the billing worker's jobs) until `done` holds. */
  async function relayUntil<T>(done: () => T | undefined | false, what: string): Promise<T> {
    const queues = new QueueRegistry({ url: redis.url, prefix: redis.prefix });
    const relay = new OutboxRelay({
      prisma: db.prisma,
      schema: 'billing',
      queues: (name) => queues.get(name),
      intervalMs: 50,
    });
    relay.start();
    try {
      return await waitFor(done, { what, timeoutMs: 20_000 });
    } finally {
      await relay.stop();
      await queues.close();
    }
  }

  it("sends each instance's billed seconds once, through the outbox, however often the job runs", async () => {
    const code = newProductCode();
    registerProduct(code, owner.accountId);
    await pricing.setProductPricing(owner, code, {
      currency: 'USD',
      instanceTypes: [
        { instanceType: 't3.micro', markup: { amount: '0.01' } },
        { instanceType: 'm5.large', markup: { percent: '25' } },
      ],
      monthlyFee: '0',
      signUpFee: '0',
    });
    const me = buyer();
    const sub = await subscribe(me.accountId, code);
    await sync.syncSubscription(sub.id);
    const [customer] = customersOf(me.accountId);
    // Paid usage of a buyer Stripe does not know (their subscription never reached it): not sent.
    const stranger = buyer();

    const run = (
      accountId: string,
      productCode: string | null,
      instanceType: string,
      runningAt: string,
      stoppedAt: string | null,
    ) =>
      instanceEvent({
        accountId,
        sellerId: owner.accountId,
        productCode,
        instanceType,
        runningAt,
        stoppedAt,
      });
    const runs = {
      // Fractions of a second are dropped: 2 h.
      hours: run(me.accountId, code, 't3.micro', '2026-10-03T10:00:00.700Z', '2026-10-03T12:00:00.200Z'),
      // 45 s, billed as the 60 s minimum.
      short: run(me.accountId, code, 't3.micro', '2026-10-09T08:00:00Z', '2026-10-09T08:00:45Z'),
      // From September: only October's 1.5 h.
      across: run(me.accountId, code, 't3.micro', '2026-09-30T23:00:00Z', '2026-10-01T01:30:00Z'),
      // Still running: up to the end of October, 12 days.
      running: run(me.accountId, code, 'm5.large', '2026-10-20T00:00:00Z', null),
      // A free image: Stripe bills nothing of it.
      free: run(me.accountId, null, 't3.micro', '2026-10-05T00:00:00Z', '2026-10-05T01:00:00Z'),
      stranger: run(stranger.accountId, code, 't3.micro', '2026-10-05T00:00:00Z', '2026-10-05T01:00:00Z'),
    };
    await env.moduleRef.get(UsageRepository).upsertMany(Object.values(runs));
    const expected = new Map([
      [`${runs.hours.instanceId}:${month}`, { type: 't3.micro', value: '7200' }],
      [`${runs.short.instanceId}:${month}`, { type: 't3.micro', value: '60' }],
      [`${runs.across.instanceId}:${month}`, { type: 't3.micro', value: '5400' }],
      [`${runs.running.instanceId}:${month}`, { type: 'm5.large', value: String(12 * 86_400) }],
    ]);

    const invoices = env.moduleRef.get(InvoicesService);
    await invoices.closeMonth(month, closedAt);

    // The close committed the job with the invoice; nothing has reached Stripe yet, so a crash
    // now loses nothing: the relay delivers the job whenever the service is back.
    const [job, ...more] = await usageJobs(me.accountId);
    expect(more).toHaveLength(0);
    expect(job).toMatchObject({ month, timestamp: monthEnd - 1 });
    expect(
      new Map(job.usage.map((u) => [`${u.instanceId}:${month}`, { type: u.instanceType, value: u.seconds }])),
    ).toEqual(expected);
    expect(job.usage.every((u) => u.productCode === code)).toBe(true);
    expect(await usageJobs(stranger.accountId)).toHaveLength(1);
    for (const identifier of expected.keys()) expect(meterEvents(identifier)).toHaveLength(0);

    // The first answer of a meter event is lost more often than the SDK retries: the job's first
    // attempt fails after Stripe counted it, and the job's retry replays it.
    stripe.failNext(3, 'drop-after', /^POST \/v1\/billing\/meter_events$/);
    await relayUntil(
      () => [...expected.keys()].every((identifier) => meterEvents(identifier).length > 0),
      'the worker to send the meter events',
    );

    const check = () => {
      for (const [identifier, { type, value }] of expected) {
        const events = meterEvents(identifier);
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({
          event_name: `imagemart_usage.${code}.${type}`,
          payload: { stripe_customer_id: customer.id, value },
          timestamp: monthEnd - 1,
        });
      }
      expect(
        stripe
          .objects('billing.meter_event')
          .filter((e) =>
            [runs.free.instanceId, runs.stranger.instanceId].some((id) =>
              String(e.identifier).startsWith(id),
            ),
          ),
      ).toHaveLength(0);
    };
    check();
    const tries = requestsFor(/^POST \/v1\/billing\/meter_events$/).filter((r) =>
      expected.has(String(r.params.identifier)),
    );
    expect(tries.filter((r) => r.failed === 'drop-after')).toHaveLength(3);
    expect(tries.filter((r) => r.replayed).length).toBeGreaterThanOrEqual(1);

    // Stripe's count of each meter is the invoice's usage line.
    const [invoice] = (await invoices.list(me, 10)).items;
    const lines = (await invoices.get(me, invoice.invoiceId)).lines.filter((l) => l.kind === 'usage');
    for (const type of ['t3.micro', 'm5.large']) {
      const line = lines.find((l) => l.productCode === code && l.instanceType === type);
      const sent = [...expected.values()]
        .filter((e) => e.type === type)
        .reduce((sum, e) => sum + Number(e.value), 0);
      expect(line?.seconds).toBe(sent);
    }

    // Closing the month again asks for nothing more.
    const outboxBefore = await db.prisma.billingOutboxEvent.count({ where: { type: STRIPE_USAGE_JOB } });
    await invoices.closeMonth(month, closedAt);
    expect(await db.prisma.billingOutboxEvent.count({ where: { type: STRIPE_USAGE_JOB } })).toBe(
      outboxBefore,
    );

    // The same job delivered again (a relay that lost its acknowledgement, a person retrying it):
    // every event is a replay, none is counted again.
    const sentBefore = requestsFor(/^POST \/v1\/billing\/meter_events$/).length;
    const queues = new QueueRegistry({ url: redis.url, prefix: redis.prefix });
    try {
      const again = await queues.get(QueueName.stripeSync).add(
        STRIPE_USAGE_JOB,
        {
          id: `again-${sub.id}`,
          type: STRIPE_USAGE_JOB,
          payload: job,
          occurredAt: new Date().toISOString(),
        },
        { jobId: `again-${sub.id}` },
      );
      await waitFor(async () => (await again.getState()) === 'completed', { what: 'the job to run again' });
    } finally {
      await queues.close();
    }
    const resent = requestsFor(/^POST \/v1\/billing\/meter_events$/).slice(sentBefore);
    expect(resent).toHaveLength(expected.size);
    expect(resent.every((r) => r.replayed)).toBe(true);
    check();
  });

  it('starts a retried job after the events Stripe confirmed', async () => {
    const code = await pricedProduct();
    const me = buyer();
    const sub = await subscribe(me.accountId, code);
    await sync.syncSubscription(sub.id);
    const [first, second] = [newInstanceId(), newInstanceId()];
    const job: StripeUsageJob = {
      accountId: me.accountId,
      month,
      timestamp: monthEnd - 1,
      usage: [
        { instanceId: first, productCode: code, instanceType: 't3.micro', seconds: '3600' },
        // Its meter is made on first need, and that call fails more often than the SDK retries.
        { instanceId: second, productCode: code, instanceType: 'c5.xlarge', seconds: '120' },
      ],
    };
    stripe.failNext(3, '500', /^POST \/v1\/billing\/meters$/);
    const queues = new QueueRegistry({ url: redis.url, prefix: redis.prefix });
    try {
      const added = await queues.get(QueueName.stripeSync).add(
        STRIPE_USAGE_JOB,
        {
          id: `progress-${sub.id}`,
          type: STRIPE_USAGE_JOB,
          payload: job,
          occurredAt: new Date().toISOString(),
        },
        { jobId: `progress-${sub.id}` },
      );
      await waitFor(async () => (await added.getState()) === 'completed', { what: 'the job to complete' });
      expect((await queues.get(QueueName.stripeSync).getJob(added.id!))?.attemptsMade).toBe(2);
    } finally {
      await queues.close();
    }
    // The first event was confirmed before the first attempt failed: the retry did not send it again.
    const sends = (instanceId: string) =>
      requestsFor(/^POST \/v1\/billing\/meter_events$/).filter(
        (r) => r.params.identifier === `${instanceId}:${month}`,
      );
    expect(sends(first)).toHaveLength(1);
    expect(sends(second)).toHaveLength(1);
    expect(meterEvents(`${second}:${month}`)[0]).toMatchObject({
      event_name: `imagemart_usage.${code}.c5.xlarge`,
      payload: { value: '120' },
    });
  });

  it('asks nothing of Stripe when it is not configured', async () => {
    const me = buyer();
    const code = await pricedProduct();
    await env.moduleRef.get(UsageRepository).upsertMany([
      instanceEvent({
        instanceId: newInstanceId(),
        accountId: me.accountId,
        sellerId: owner.accountId,
        productCode: code,
        instanceType: 't3.micro',
        runningAt: '2026-10-05T00:00:00Z',
        stoppedAt: '2026-10-05T01:00:00Z',
      }),
    ]);
    const ledgerOnly = new StripeSyncQueue(null, env.moduleRef.get(UsageRepository));
    const enabled = env.moduleRef.get(StripeSyncQueue);
    const close = {
      accountId: me.accountId,
      month,
      start: new Date('2026-10-01T00:00:00Z'),
      end: new Date('2026-11-01T00:00:00Z'),
    };
    // Rolled back either way: only what the calls would write matters.
    const written = async (queue: StripeSyncQueue) => {
      let count = -1;
      await db.prisma
        .$transaction(async (tx) => {
          await queue.usageClosed(tx, close);
          count = (await tx.billingOutboxEvent.findMany({ where: { type: STRIPE_USAGE_JOB } })).filter(
            (row) => (row.payload as { accountId: string }).accountId === me.accountId,
          ).length;
          throw new Error('rollback');
        })
        .catch(() => undefined);
      return count;
    };
    expect(await written(ledgerOnly)).toBe(0);
    expect(await written(enabled)).toBe(1);
  });
});
