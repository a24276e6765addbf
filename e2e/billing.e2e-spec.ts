import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, Platform, expectProblem } from './support/platform.js';

/**
 * Billing over HTTP with the five real processes: platform and product pricing, subscriptions,
 * ownership checks, problem+json errors. Product codes come from the real catalog (a paid listing).
 */
let platform: Platform;
let base: string;


beforeAll(async () => {
  platform = await Platform.start('billing');
  base = platform.baseUrl;
}, 60_000);

afterAll(async () => {
  await platform?.stop();
});

const createAccount = (roles: string[]) => platform.createAccount(roles);

/** A paid listing in the real catalog: its product code. */
async function paidProduct(sellerKey: string): Promise<string> {
  const res = await http(base, 'POST', '/v1/listings', {
    key: sellerKey,
    body: { title: `Hardened Linux ${Math.random().toString(36).slice(2, 8)}`, summary: 'A paid test product', categories: ['security'], pricingType: 'paid' },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect(res.body.productCode).toMatch(/^prod-[0-9a-z]{20}$/);
  return res.body.productCode as string;
}

const productPricing = {
  currency: 'USD',
  instanceTypes: [
    { instanceType: 't3.micro', markup: { percent: '20' } },
    { instanceType: 'm5.large', markup: { amount: '0.004' } },
  ],
  monthlyFee: '4.99',
  signUpFee: '10',
};

describe('platform pricing', () => {
  it('shows the base rates to anyone and lets only an admin change them', async () => {
    const anonymous = await http(base, 'GET', '/v1/pricing/instance-types');
    expect(anonymous.status).toBe(200);
    expect(anonymous.body).toMatchObject({
      currency: 'USD',
      instanceTypes: [
        { instanceType: 'c5.xlarge', hourly: '0.17' },
        { instanceType: 'm5.large', hourly: '0.096' },
        { instanceType: 't3.micro', hourly: '0.0104' },
        { instanceType: 't3.small', hourly: '0.0208' },
      ],
      platformFee: { percent: '3', fixedPerBuyer: '0.30' },
    });

    const body = { currency: 'USD', instanceTypes: [...anonymous.body.instanceTypes, { instanceType: 'r5.large', hourly: '0.126' }] };
    const buyer = await createAccount(['buyer']);
    expectProblem(await http(base, 'PUT', '/v1/pricing/instance-types', { key: buyer.key, body }), 403, 'UnauthorizedOperation');
    expectProblem(await http(base, 'PUT', '/v1/pricing/instance-types', { body }), 401, 'AuthFailure');

    const set = await http(base, 'PUT', '/v1/pricing/instance-types', { key: platform.adminKey, body });
    expect(set.status).toBe(200);
    expect(set.body.instanceTypes).toContainEqual({ instanceType: 'r5.large', hourly: '0.126' });
    expect((await http(base, 'GET', '/v1/pricing/instance-types', { key: buyer.key })).body.instanceTypes).toHaveLength(5);
  });

  it('refuses negative, absurd, float and non-USD prices with 400 naming the field', async () => {
    const put = (body: unknown) => http(base, 'PUT', '/v1/pricing/instance-types', { key: platform.adminKey, body });
    const negative = expectProblem(await put({ currency: 'USD', instanceTypes: [{ instanceType: 't3.micro', hourly: '-1' }] }), 400, 'InvalidParameterValue');
    expect(negative.errors).toContainEqual({ path: 'instanceTypes.0.hourly', message: 'must not be negative' });
    const absurd = expectProblem(await put({ currency: 'USD', instanceTypes: [{ instanceType: 't3.micro', hourly: '1000.01' }] }), 400, 'InvalidParameterValue');
    expect(absurd.errors?.[0]?.message).toMatch(/at most 1000/);
    expectProblem(await put({ currency: 'USD', instanceTypes: [{ instanceType: 't3.micro', hourly: 0.0104 }] }), 400, 'InvalidParameterValue');
    const euro = expectProblem(await put({ currency: 'EUR', instanceTypes: [{ instanceType: 't3.micro', hourly: '1' }] }), 400, 'InvalidParameterValue');
    expect(euro.errors).toContainEqual({ path: 'currency', message: 'only USD is accepted for now' });
  });
});

describe('product pricing', () => {
  it('lets the owning seller price a product, and shows anyone base + markup exactly', async () => {
    const seller = await createAccount(['seller']);
    const code = await paidProduct(seller.key);
    expectProblem(await http(base, 'GET', `/v1/products/${code}/pricing`), 404, 'InvalidProductCode.NotFound');
    expectProblem(await http(base, 'GET', '/v1/products/prod-NOPE/pricing'), 400, 'InvalidProductCode.Malformed');

    const other = await createAccount(['seller']);
    expectProblem(await http(base, 'PUT', `/v1/products/${code}/pricing`, { key: other.key, body: productPricing }), 403, 'UnauthorizedOperation');
    expectProblem(
      await http(base, 'PUT', `/v1/products/prod-aaaaaaaaaaaaaaaaaaaa/pricing`, { key: seller.key, body: productPricing }),
      404,
      'InvalidProductCode.NotFound',
    );
    expectProblem(
      await http(base, 'PUT', `/v1/products/${code}/pricing`, { key: seller.key, body: { ...productPricing, monthlyFee: '100001' } }),
      400,
      'InvalidParameterValue',
    );
    expectProblem(
      await http(base, 'PUT', `/v1/products/${code}/pricing`, {
        key: seller.key,
        body: { ...productPricing, instanceTypes: [{ instanceType: 'zz9.nothing', markup: { amount: '1' } }] },
      }),
      400,
      'InvalidInstanceType',
    );

    const set = await http(base, 'PUT', `/v1/products/${code}/pricing`, { key: seller.key, body: productPricing });
    expect(set.status).toBe(200);
    const expected = {
      productCode: code,
      sellerId: seller.id,
      currency: 'USD',
      instanceTypes: [
        { instanceType: 'm5.large', baseHourly: '0.096', markup: { amount: '0.004' }, hourly: '0.10' },
        { instanceType: 't3.micro', baseHourly: '0.0104', markup: { percent: '20' }, hourly: '0.01248' },
      ],
      monthlyFee: '4.99',
      signUpFee: '10.00',
      revision: 1,
    };
    expect(set.body).toMatchObject(expected);
    const anonymous = await http(base, 'GET', `/v1/products/${code}/pricing`);
    expect(anonymous.status).toBe(200);
    expect(anonymous.body).toEqual(set.body);
  });
});

describe('subscriptions', () => {
  let seller: { id: string; key: string };
  let code: string;
  beforeAll(async () => {
    seller = await createAccount(['seller']);
    code = await paidProduct(seller.key);
    expect((await http(base, 'PUT', `/v1/products/${code}/pricing`, { key: seller.key, body: productPricing })).status).toBe(200);
  });

  it('subscribes a buyer once; a retry with the same X-Request-Id gets the same subscription', async () => {
    const buyer = await createAccount(['buyer']);
    const headers = { 'x-request-id': `e2e-subscribe-${buyer.id}` };
    const created = await http(base, 'POST', '/v1/subscriptions', { key: buyer.key, body: { productCode: code }, headers });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ accountId: buyer.id, productCode: code, status: 'active', entitled: true, cancelAtPeriodEnd: false });
    expect(created.body.id).toMatch(/^sub-[0-9a-f]{17}$/);
    const now = new Date();
    expect(created.body.currentPeriodEnd).toBe(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString());

    const retry = await http(base, 'POST', '/v1/subscriptions', { key: buyer.key, body: { productCode: code }, headers });
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(created.body);
    expectProblem(await http(base, 'POST', '/v1/subscriptions', { key: buyer.key, body: { productCode: code } }), 409, 'SubscriptionAlreadyExists');

    const list = await http(base, 'GET', '/v1/subscriptions?limit=10', { key: buyer.key });
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ items: [created.body], nextCursor: null });
    expect((await http(base, 'GET', `/v1/subscriptions/${created.body.id}`, { key: buyer.key })).body).toEqual(created.body);
  });

  it('refuses what cannot be subscribed to, and malformed input', async () => {
    const buyer = await createAccount(['buyer']);
    expectProblem(await http(base, 'POST', '/v1/subscriptions', { key: buyer.key, body: { productCode: 'prod-bbbbbbbbbbbbbbbbbbbb' } }), 404, 'InvalidProductCode.NotFound');
    const unpriced = await paidProduct(seller.key);
    expectProblem(await http(base, 'POST', '/v1/subscriptions', { key: buyer.key, body: { productCode: unpriced } }), 409, 'IncorrectState');
    expectProblem(await http(base, 'POST', '/v1/subscriptions', { key: seller.key, body: { productCode: code } }), 403, 'UnauthorizedOperation');
    expectProblem(await http(base, 'POST', '/v1/subscriptions', { key: buyer.key, body: { productCode: code, extra: 1 } }), 400, 'InvalidParameterValue');
    const unknownQuery = expectProblem(await http(base, 'GET', '/v1/subscriptions?sort=new', { key: buyer.key }), 400, 'InvalidParameterValue');
    expect(JSON.stringify(unknownQuery.errors)).toContain('sort');
    expectProblem(await http(base, 'GET', '/v1/subscriptions/sub-123', { key: buyer.key }), 400, 'InvalidSubscriptionID.Malformed');
    expectProblem(await http(base, 'GET', '/v1/subscriptions'), 401, 'AuthFailure');
  });

  it("cancels at period end; another account's subscription answers 404", async () => {
    const buyer = await createAccount(['buyer']);
    const other = await createAccount(['buyer']);
    const sub = (await http(base, 'POST', '/v1/subscriptions', { key: buyer.key, body: { productCode: code } })).body;

    expectProblem(await http(base, 'GET', `/v1/subscriptions/${sub.id}`, { key: other.key }), 404, 'InvalidSubscriptionID.NotFound');
    expectProblem(await http(base, 'POST', `/v1/subscriptions/${sub.id}/cancel`, { key: other.key }), 404, 'InvalidSubscriptionID.NotFound');
    expect((await http(base, 'GET', '/v1/subscriptions', { key: other.key })).body.items).toEqual([]);

    const cancelled = await http(base, 'POST', `/v1/subscriptions/${sub.id}/cancel`, { key: buyer.key });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ id: sub.id, status: 'active', entitled: true, cancelAtPeriodEnd: true, currentPeriodEnd: sub.currentPeriodEnd });
    expect(cancelled.body.canceledAt).toEqual(expect.any(String));
    const again = await http(base, 'POST', `/v1/subscriptions/${sub.id}/cancel`, { key: buyer.key });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(cancelled.body);
  });
});
