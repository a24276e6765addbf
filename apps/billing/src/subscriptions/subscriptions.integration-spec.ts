import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BillingPattern, ErrorCode, type Caller, type EntitlementCheckResponse, type SubscriptionView } from '@imagemart/contracts';
import { sendRpc } from '@imagemart/messaging';
import { createTestDatabase, createTestRedisPrefix, type TestDatabase, type TestRedisPrefix } from '@imagemart/testing';
import { PricingService } from '../pricing/pricing.service.js';
import {
  buyer,
  codeOf,
  inRequest,
  newProductCode,
  registerProduct,
  seller,
  startBillingTestEnv,
  type BillingTestEnv,
} from '../testing/billing-test-env.fixture.js';
import { SubscriptionsService } from './subscriptions.service.js';

let db: TestDatabase;
let redis: TestRedisPrefix;
let env: BillingTestEnv;
let subscriptions: SubscriptionsService;
let pricing: PricingService;
const owner = seller();

beforeAll(async () => {
  db = await createTestDatabase('billing-subscriptions');
  redis = createTestRedisPrefix('billing-subscriptions');
  env = await startBillingTestEnv({ prisma: db.prisma, redisUrl: redis.url, prefix: redis.prefix, serveBilling: true });
  subscriptions = env.moduleRef.get(SubscriptionsService);
  pricing = env.moduleRef.get(PricingService);
});

afterAll(async () => {
  await env?.close();
  await redis?.cleanup();
  await db?.drop();
});

/** A product in the catalog with prices. */
async function pricedProduct(): Promise<string> {
  const code = newProductCode();
  registerProduct(code, owner.accountId);
  await pricing.setProductPricing(owner, code, {
    currency: 'USD',
    instanceTypes: [{ instanceType: 't3.micro', markup: { amount: '0.01' } }],
    monthlyFee: '5',
    signUpFee: '1',
  });
  return code;
}

let requests = 0;
const subscribe = (caller: Caller, code: string, requestId = `req-sub-${++requests}`, now?: Date) =>
  inRequest(requestId, () => subscriptions.create(caller, code, now));
const cancel = (caller: Caller, id: string, requestId = `req-cancel-${++requests}`, now?: Date) =>
  inRequest(requestId, () => subscriptions.cancel(caller, id, now));

interface OutboxRow {
  type: string;
  queue: string;
  payload: { subscriptionId: string; status: string; entitled: boolean; revision: number; accountId: string; productCode: string };
  request_id: string | null;
}
const eventsOf = (subscriptionId: string) =>
  db.prisma.$queryRaw<OutboxRow[]>`
    SELECT type, queue, payload, request_id FROM billing.outbox_event
     WHERE payload->>'subscriptionId' = ${subscriptionId} ORDER BY created_at`;

describe('subscribing', () => {
  it('starts an active subscription for the rest of the calendar month, and writes its event', async () => {
    const code = await pricedProduct();
    const me = buyer();
    const sub = await subscribe(me, code, 'req-first', new Date('2026-03-15T12:00:00Z'));
    expect(sub).toMatchObject({
      accountId: me.accountId,
      productCode: code,
      status: 'active',
      entitled: true,
      cancelAtPeriodEnd: false,
      currentPeriodStart: '2026-03-15T12:00:00.000Z',
      currentPeriodEnd: '2026-04-01T00:00:00.000Z',
      canceledAt: null,
      endedAt: null,
    });
    expect(sub.id).toMatch(/^sub-[0-9a-f]{17}$/);
    expect(await eventsOf(sub.id)).toEqual([
      {
        type: 'billing.subscription.changed',
        queue: 'permission-events',
        payload: { subscriptionId: sub.id, accountId: me.accountId, productCode: code, status: 'active', entitled: true, revision: 1 },
        request_id: 'req-first',
      },
    ]);
    const row = await db.prisma.subscription.findUniqueOrThrow({ where: { id: sub.id } });
    expect(row.sellerId).toBe(owner.accountId);
  });

  it('refuses a product the catalog does not know, one with no pricing, and a caller who is not a buyer', async () => {
    expect(await codeOf(subscribe(buyer(), newProductCode()))).toBe(ErrorCode.InvalidProductCodeNotFound);
    const unpriced = newProductCode();
    registerProduct(unpriced, owner.accountId);
    expect(await codeOf(subscribe(buyer(), unpriced))).toBe(ErrorCode.IncorrectState);
    expect(await codeOf(subscribe(seller(), await pricedProduct()))).toBe(ErrorCode.UnauthorizedOperation);
    expect(await db.prisma.subscription.count({ where: { productCode: unpriced } })).toBe(0);
  });

  it('refuses a second subscription while one is active: 409 SubscriptionAlreadyExists', async () => {
    const code = await pricedProduct();
    const me = buyer();
    const first = await subscribe(me, code);
    expect(await codeOf(subscribe(me, code))).toBe(ErrorCode.SubscriptionAlreadyExists);
    // Someone else may subscribe to the same product.
    expect((await subscribe(buyer(), code)).status).toBe('active');
    expect(await db.prisma.subscription.count({ where: { accountId: me.accountId } })).toBe(1);
    expect(await eventsOf(first.id)).toHaveLength(1);
  });

  it('lets five simultaneous requests of one buyer create one subscription', async () => {
    const code = await pricedProduct();
    const me = buyer();
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => codeOf(subscribe(me, code))));
    expect(results.filter((r) => r === 'resolved')).toHaveLength(1);
    expect(results.filter((r) => r === ErrorCode.SubscriptionAlreadyExists)).toHaveLength(4);
    expect(await db.prisma.subscription.count({ where: { accountId: me.accountId } })).toBe(1);
  });

  it('answers a replayed request as the first time, even when both runs overlap', async () => {
    const code = await pricedProduct();
    const me = buyer();
    const first = await subscribe(me, code, 'req-replayed');
    const replay = await subscribe(me, code, 'req-replayed');
    expect(replay).toEqual(first);

    const other = await pricedProduct();
    const [a, b] = await Promise.all([subscribe(me, other, 'req-twice'), subscribe(me, other, 'req-twice')]);
    expect(a.id).toBe(b.id);
    expect(await db.prisma.subscription.count({ where: { accountId: me.accountId, productCode: other } })).toBe(1);
    expect(await eventsOf(a.id)).toHaveLength(1);
  });

  it('replays over the transport with the request id the caller sent', async () => {
    const code = await pricedProduct();
    const me = buyer();
    const call = () => inRequest('req-over-rpc', () => sendRpc<SubscriptionView>(env.billing!, BillingPattern.subscriptionCreate, { caller: me, productCode: code }));
    const first = await call();
    expect(await call()).toEqual(first);
    // A new request is a second subscribe.
    const second = await inRequest('req-over-rpc-2', () =>
      sendRpc(env.billing!, BillingPattern.subscriptionCreate, { caller: me, productCode: code }).catch((e: unknown) => e),
    );
    expect(second).toMatchObject({ code: ErrorCode.SubscriptionAlreadyExists });
  });
});

describe('reading subscriptions', () => {
  it("shows a buyer its own subscriptions only: another account's answers 404", async () => {
    const me = buyer();
    const sub = await subscribe(me, await pricedProduct());
    expect(await subscriptions.get(me, sub.id)).toEqual(sub);
    expect(await codeOf(subscriptions.get(buyer(), sub.id))).toBe(ErrorCode.InvalidSubscriptionIDNotFound);
    expect(await codeOf(subscriptions.get(me, 'sub-00000000000000000'))).toBe(ErrorCode.InvalidSubscriptionIDNotFound);
    expect((await subscriptions.list(buyer(), 10)).items).toEqual([]);
  });

  it('pages through them newest first, with a status filter', async () => {
    const me = buyer();
    const made: SubscriptionView[] = [];
    for (let i = 0; i < 5; i++) made.push(await subscribe(me, await pricedProduct()));
    await cancel(me, made[0].id);
    await subscriptions.sweep(new Date(Date.parse(made[0].currentPeriodEnd) + 1));

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await subscriptions.list(me, 2, cursor);
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((s) => s.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(made.map((s) => s.id).reverse());

    expect((await subscriptions.list(me, 10, undefined, 'canceled')).items.map((s) => s.id)).toEqual([made[0].id]);
    expect((await subscriptions.list(me, 10, undefined, 'active')).items).toHaveLength(4);
    expect(await codeOf(subscriptions.list(me, 10, 'bm90LWEtY3Vyc29y'))).toBe(ErrorCode.InvalidPaginationToken);
  });
});

describe('cancelling and the sweep', () => {
  it('keeps a cancelled subscription active until its period ends, then ends it', async () => {
    const me = buyer();
    const code = await pricedProduct();
    const sub = await subscribe(me, code, 'req-s', new Date('2026-05-20T08:00:00Z'));

    const cancelled = await cancel(me, sub.id, 'req-c', new Date('2026-05-21T00:00:00Z'));
    expect(cancelled).toMatchObject({ status: 'active', entitled: true, cancelAtPeriodEnd: true, canceledAt: '2026-05-21T00:00:00.000Z', endedAt: null });
    // Cancelling again, or the same request again, changes nothing.
    expect(await cancel(me, sub.id)).toEqual(cancelled);
    expect(await cancel(me, sub.id, 'req-c')).toEqual(cancelled);
    expect(await codeOf(cancel(buyer(), sub.id))).toBe(ErrorCode.InvalidSubscriptionIDNotFound);

    // Before the period ends the sweep leaves it alone.
    expect(await subscriptions.sweep(new Date('2026-05-31T23:59:59.999Z'))).toMatchObject({ ended: 0 });
    expect((await subscriptions.get(me, sub.id)).status).toBe('active');
    expect((await sendRpc<EntitlementCheckResponse>(env.billing!, BillingPattern.entitlementCheck, { accountId: me.accountId, productCodes: [code] })).entitled).toBe(true);

    const swept = await subscriptions.sweep(new Date('2026-06-01T00:00:00Z'));
    expect(swept.ended).toBeGreaterThanOrEqual(1);
    const ended = await subscriptions.get(me, sub.id);
    expect(ended).toMatchObject({ status: 'canceled', entitled: false, cancelAtPeriodEnd: true, endedAt: '2026-06-01T00:00:00.000Z' });
    expect(await sendRpc(env.billing!, BillingPattern.entitlementCheck, { accountId: me.accountId, productCodes: [code] })).toEqual({
      entitled: false,
      subscriptionId: null,
    });

    // The same cancel request replayed after the end answers the final state; a new one is a conflict.
    expect((await cancel(me, sub.id, 'req-c')).status).toBe('canceled');
    expect(await codeOf(cancel(me, sub.id))).toBe(ErrorCode.IncorrectState);

    // Every change was published, with a growing revision; the no-op cancels published nothing.
    expect((await eventsOf(sub.id)).map((e) => [e.payload.revision, e.payload.status, e.payload.entitled, e.request_id])).toEqual([
      [1, 'active', true, 'req-s'],
      [2, 'active', true, 'req-c'],
      [3, 'canceled', false, null],
    ]);

    // The product can be subscribed to again once the old subscription has ended.
    expect((await subscribe(me, code)).id).not.toBe(sub.id);
  });

  it('moves a subscription that was not cancelled to the calendar month that contains now', async () => {
    const me = buyer();
    const sub = await subscribe(me, await pricedProduct(), undefined, new Date('2026-01-10T00:00:00Z'));
    await subscriptions.sweep(new Date('2026-03-05T00:00:00Z'));
    const renewed = await subscriptions.get(me, sub.id);
    expect(renewed).toMatchObject({ status: 'active', currentPeriodStart: '2026-03-01T00:00:00.000Z', currentPeriodEnd: '2026-04-01T00:00:00.000Z' });
    expect((await eventsOf(sub.id)).map((e) => e.payload.revision)).toEqual([1, 2]);
  });

  it('lets replicas sweep at once without handling a subscription twice (SKIP LOCKED)', async () => {
    const start = new Date('2025-01-05T00:00:00Z');
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const me = buyer();
      const sub = await subscribe(me, await pricedProduct(), undefined, start);
      await cancel(me, sub.id, undefined, start);
      ids.push(sub.id);
    }
    const results = await Promise.all([1, 2, 3].map(() => subscriptions.sweep(new Date('2025-02-01T00:00:00Z'), 3)));
    expect(results.reduce((n, r) => n + r.ended, 0)).toBe(12);
    for (const id of ids) {
      expect((await eventsOf(id)).map((e) => e.payload.status)).toEqual(['active', 'active', 'canceled']);
    }
  });
});

describe('billing.entitlement.check', () => {
  const check = (accountId: string, productCodes: string[]) =>
    sendRpc<EntitlementCheckResponse>(env.billing!, BillingPattern.entitlementCheck, { accountId, productCodes });

  it('entitles an active or past_due subscription to every code, and nothing else', async () => {
    const me = buyer();
    const a = await pricedProduct();
    const b = await pricedProduct();
    expect(await check(me.accountId, [a])).toEqual({ entitled: false, subscriptionId: null });
    expect(await check(me.accountId, [])).toEqual({ entitled: true, subscriptionId: null });

    const subA = await subscribe(me, a);
    expect(await check(me.accountId, [a])).toEqual({ entitled: true, subscriptionId: subA.id });
    // Every code must be covered.
    expect(await check(me.accountId, [a, b])).toEqual({ entitled: false, subscriptionId: null });
    const subB = await subscribe(me, b);
    expect(await check(me.accountId, [b, a])).toEqual({ entitled: true, subscriptionId: subB.id });
    // Another account's subscription entitles no one else.
    expect(await check(buyer().accountId, [a])).toEqual({ entitled: false, subscriptionId: null });

    // past_due keeps access (the payment grace period).
    await db.prisma.subscription.update({ where: { id: subA.id }, data: { status: 'past_due' } });
    expect(await check(me.accountId, [a])).toEqual({ entitled: true, subscriptionId: subA.id });
    // A subscription that is not active cannot be cancelled.
    expect(await codeOf(cancel(me, subA.id))).toBe(ErrorCode.IncorrectState);
  });

  it('refuses a malformed request', async () => {
    expect(await check('12', []).catch((e: unknown) => e)).toMatchObject({ code: ErrorCode.InvalidParameterValue });
    expect(await check(buyer().accountId, ['prod-x']).catch((e: unknown) => e)).toMatchObject({ code: ErrorCode.InvalidParameterValue });
  });
});
