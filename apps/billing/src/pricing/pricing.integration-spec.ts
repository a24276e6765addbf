import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type PlatformPricingBody, type ProductPricingBody } from '@imagemart/contracts';
import { sendRpc } from '@imagemart/messaging';
import { createTestDatabase, createTestRedisPrefix, type TestDatabase, type TestRedisPrefix } from '@imagemart/testing';
import {
  admin,
  codeOf,
  newProductCode,
  registerProduct,
  seller,
  startBillingTestEnv,
  type BillingTestEnv,
} from '../testing/billing-test-env.fixture.js';
import { BillingPattern } from '@imagemart/contracts';
import { PricingService } from './pricing.service.js';

let db: TestDatabase;
let redis: TestRedisPrefix;
let env: BillingTestEnv;
let pricing: PricingService;

const DEFAULT_RATES: PlatformPricingBody['instanceTypes'] = [
  { instanceType: 'c5.xlarge', hourly: '0.17' },
  { instanceType: 'm5.large', hourly: '0.096' },
  { instanceType: 't3.micro', hourly: '0.0104' },
  { instanceType: 't3.small', hourly: '0.0208' },
];

beforeAll(async () => {
  db = await createTestDatabase('billing-pricing');
  redis = createTestRedisPrefix('billing-pricing');
  env = await startBillingTestEnv({ prisma: db.prisma, redisUrl: redis.url, prefix: redis.prefix, serveBilling: true });
  pricing = env.moduleRef.get(PricingService);
});

afterAll(async () => {
  await env?.close();
  await redis?.cleanup();
  await db?.drop();
});

/** Calls billing over the transport, as the gateway and the other services do. */
const rpc = <T>(pattern: string, data: unknown) => sendRpc<T>(env.billing!, pattern, data);

describe('platform pricing', () => {
  it('starts with the documented defaults: four instance types and the DevPay fee', async () => {
    const view = await pricing.platformPricing();
    expect(view).toMatchObject({
      currency: 'USD',
      instanceTypes: DEFAULT_RATES,
      platformFee: { percent: '3', fixedPerBuyer: '0.30' },
    });
    // Anyone may read it, over the transport too.
    expect(await rpc(BillingPattern.platformPricingGet, {})).toEqual(view);
  });

  it('lets only an admin set it; a PUT replaces the whole list of rates', async () => {
    const body: PlatformPricingBody = {
      currency: 'USD',
      instanceTypes: [...DEFAULT_RATES, { instanceType: 'x1.tiny', hourly: '0.000005' }],
      platformFee: { percent: '2.5', fixedPerBuyer: '0.25' },
    };
    expect(await codeOf(pricing.setPlatformPricing(seller(), body))).toBe(ErrorCode.UnauthorizedOperation);
    const set = await pricing.setPlatformPricing(admin(), body);
    expect(set.instanceTypes.map((t) => t.instanceType)).toEqual(['c5.xlarge', 'm5.large', 't3.micro', 't3.small', 'x1.tiny']);
    expect(set.platformFee).toEqual({ percent: '2.5', fixedPerBuyer: '0.25' });

    // Without platformFee the fee stays; a type left out is removed.
    const again = await pricing.setPlatformPricing(admin(), { currency: 'USD', instanceTypes: body.instanceTypes.slice(1) });
    expect(again.instanceTypes.map((t) => t.instanceType)).toEqual(['m5.large', 't3.micro', 't3.small', 'x1.tiny']);
    expect(again.platformFee).toEqual({ percent: '2.5', fixedPerBuyer: '0.25' });
    // Stored exactly (numeric(18,6)), never through a float.
    const [row] = await db.prisma.$queryRaw<{ hourly: string }[]>`SELECT hourly::text AS hourly FROM billing.instance_type_rate WHERE id = 'x1.tiny'`;
    expect(row?.hourly).toBe('0.000005');

    await pricing.setPlatformPricing(admin(), body);
  });

  it.each([
    ['a negative rate', { instanceTypes: [{ instanceType: 't3.micro', hourly: '-0.01' }] }, 'instanceTypes.0.hourly', 'must not be negative'],
    ['a JSON number', { instanceTypes: [{ instanceType: 't3.micro', hourly: 0.0104 }] }, 'instanceTypes.0.hourly', 'not a JSON number'],
    ['seven decimals', { instanceTypes: [{ instanceType: 't3.micro', hourly: '0.0000001' }] }, 'instanceTypes.0.hourly', 'at most 6 decimal places'],
    ['an absurd rate', { instanceTypes: [{ instanceType: 't3.micro', hourly: '1000.000001' }] }, 'instanceTypes.0.hourly', 'at most 1000'],
    ['another currency', { currency: 'EUR' }, 'currency', 'only USD'],
    ['a duplicate type', { instanceTypes: [{ instanceType: 't3.micro', hourly: '1' }, { instanceType: 't3.micro', hourly: '2' }] }, 'instanceTypes', 'once'],
    ['a bad type name', { instanceTypes: [{ instanceType: 'T3 Micro', hourly: '1' }] }, 'instanceTypes.0.instanceType', 'instance type'],
    ['a fee over 100%', { platformFee: { percent: '100.5', fixedPerBuyer: '0' } }, 'platformFee.percent', 'at most 100'],
  ])('refuses %s with 400 and the field', async (_what, change, path, message) => {
    const pricingBody = { currency: 'USD', instanceTypes: DEFAULT_RATES, ...change };
    const err = await rpc(BillingPattern.platformPricingPut, { caller: admin(), pricing: pricingBody }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.InvalidParameterValue });
    const fields = (err as { errors: { path: string; message: string }[] }).errors;
    expect(fields).toContainEqual({ path: `pricing.${path}`, message: expect.stringContaining(message) });
    // Nothing changed.
    expect((await pricing.platformPricing()).instanceTypes).toHaveLength(5);
  });

  it('accepts the limits themselves: 0 and 1000 per hour', async () => {
    const view = await rpc<{ instanceTypes: unknown[] }>(BillingPattern.platformPricingPut, {
      caller: admin(),
      pricing: { currency: 'USD', instanceTypes: [...DEFAULT_RATES, { instanceType: 'x1.tiny', hourly: '0.000005' }, { instanceType: 'z9.free', hourly: '0' }, { instanceType: 'z9.max', hourly: '1000' }] },
    });
    expect(view.instanceTypes).toContainEqual({ instanceType: 'z9.free', hourly: '0.00' });
    expect(view.instanceTypes).toContainEqual({ instanceType: 'z9.max', hourly: '1000.00' });
  });
});

describe('product pricing', () => {
  const owner = seller();
  const body = (change: Partial<ProductPricingBody> = {}): ProductPricingBody => ({
    currency: 'USD',
    instanceTypes: [
      { instanceType: 't3.micro', markup: { percent: '20' } },
      { instanceType: 'm5.large', markup: { amount: '0.004' } },
      { instanceType: 'x1.tiny', markup: { percent: '10' } },
    ],
    monthlyFee: '4.99',
    signUpFee: '10',
    ...change,
  });

  it('lets the owner set prices, and shows buyers base + markup, exactly', async () => {
    const code = newProductCode();
    registerProduct(code, owner.accountId);
    const view = await pricing.setProductPricing(owner, code, body());
    expect(view).toMatchObject({ productCode: code, sellerId: owner.accountId, currency: 'USD', monthlyFee: '4.99', signUpFee: '10.00', revision: 1 });
    expect(view.instanceTypes).toEqual([
      // 0.096 + 0.004: an exact sum, where binary floats give 0.1 only by luck.
      { instanceType: 'm5.large', baseHourly: '0.096', markup: { amount: '0.004' }, hourly: '0.10' },
      // 0.0104 + 20% = 0.0104 + 0.00208
      { instanceType: 't3.micro', baseHourly: '0.0104', markup: { percent: '20' }, hourly: '0.01248' },
      // 10% of 0.000005 is 0.0000005: rounded half up to 0.000001.
      { instanceType: 'x1.tiny', baseHourly: '0.000005', markup: { percent: '10' }, hourly: '0.000006' },
    ]);
    // Anyone reads the same, over the transport.
    expect(await rpc(BillingPattern.productPricingGet, { productCode: code })).toEqual(view);

    // Setting again replaces the prices and bumps the revision.
    const again = await pricing.setProductPricing(owner, code, body({ instanceTypes: [{ instanceType: 't3.small', markup: { amount: '0.1' } }], monthlyFee: '0' }));
    expect(again).toMatchObject({ revision: 2, monthlyFee: '0.00' });
    // 0.0208 + 0.1
    expect(again.instanceTypes).toEqual([{ instanceType: 't3.small', baseHourly: '0.0208', markup: { amount: '0.10' }, hourly: '0.1208' }]);
  });

  it('adds 0.1 and 0.2 to 0.30 exactly', async () => {
    await pricing.setPlatformPricing(admin(), {
      currency: 'USD',
      instanceTypes: [...DEFAULT_RATES, { instanceType: 'x1.tiny', hourly: '0.000005' }, { instanceType: 'y1.point', hourly: '0.2' }],
    });
    const code = newProductCode();
    registerProduct(code, owner.accountId);
    const view = await pricing.setProductPricing(owner, code, body({ instanceTypes: [{ instanceType: 'y1.point', markup: { amount: '0.1' } }] }));
    expect(view.instanceTypes[0]?.hourly).toBe('0.30');
  });

  it("refuses someone else's product, an unknown product, an unknown instance type and absurd totals", async () => {
    const code = newProductCode();
    registerProduct(code, owner.accountId);
    expect(await codeOf(pricing.setProductPricing(seller(), code, body()))).toBe(ErrorCode.UnauthorizedOperation);
    expect(await codeOf(pricing.setProductPricing(owner, newProductCode(), body()))).toBe(ErrorCode.InvalidProductCodeNotFound);
    expect(await codeOf(pricing.setProductPricing(owner, code, body({ instanceTypes: [{ instanceType: 'q7.huge', markup: { amount: '1' } }] })))).toBe(
      ErrorCode.InvalidInstanceType,
    );
    // z9.max is 1000 an hour: any markup at all makes the total absurd.
    await pricing.setPlatformPricing(admin(), { currency: 'USD', instanceTypes: [...DEFAULT_RATES, { instanceType: 'x1.tiny', hourly: '0.000005' }, { instanceType: 'z9.max', hourly: '1000' }] });
    const err = await pricing.setProductPricing(owner, code, body({ instanceTypes: [{ instanceType: 't3.micro', markup: { amount: '1' } }, { instanceType: 'z9.max', markup: { percent: '0.0001' } }] })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.InvalidParameterValue, errors: [{ path: 'instanceTypes.1.markup', message: expect.stringContaining('at most 1000') }] });
    // None of these stored anything.
    expect(await codeOf(pricing.productPricing(code))).toBe(ErrorCode.InvalidProductCodeNotFound);
  });

  it.each([
    ['a negative monthly fee', { monthlyFee: '-1' }, 'pricing.monthlyFee'],
    ['a monthly fee over 100000', { monthlyFee: '100000.01' }, 'pricing.monthlyFee'],
    ['a markup over 1000 an hour', { instanceTypes: [{ instanceType: 't3.micro', markup: { amount: '1000.5' } }] }, 'pricing.instanceTypes.0.markup.amount'],
    ['a markup with both kinds', { instanceTypes: [{ instanceType: 't3.micro', markup: { amount: '1', percent: '2' } }] }, 'pricing.instanceTypes.0.markup'],
    ['another currency', { currency: 'GBP' }, 'pricing.currency'],
    ['no instance types', { instanceTypes: [] }, 'pricing.instanceTypes'],
  ])('refuses %s at the service edge', async (_what, change, path) => {
    const code = newProductCode();
    registerProduct(code, owner.accountId);
    const err = await rpc(BillingPattern.productPricingPut, { caller: owner, productCode: code, pricing: { ...body(), ...change } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.InvalidParameterValue });
    expect((err as { errors: { path: string }[] }).errors.map((e) => e.path)).toContain(path);
  });

  it('answers 404 for a product with no pricing yet', async () => {
    const err = await rpc(BillingPattern.productPricingGet, { productCode: newProductCode() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.InvalidProductCodeNotFound, detail: expect.stringContaining('no pricing') });
  });

  it('stops offering a product on an instance type whose base rate was removed', async () => {
    const code = newProductCode();
    registerProduct(code, owner.accountId);
    await pricing.setPlatformPricing(admin(), { currency: 'USD', instanceTypes: [...DEFAULT_RATES, { instanceType: 'x1.tiny', hourly: '0.000005' }] });
    await pricing.setProductPricing(owner, code, body());
    await pricing.setPlatformPricing(admin(), { currency: 'USD', instanceTypes: DEFAULT_RATES });
    expect((await pricing.productPricing(code)).instanceTypes.map((t) => t.instanceType)).toEqual(['m5.large', 't3.micro']);
  });
});

describe('billing.pricing.quote', () => {
  it('answers base rates and each product, null for one not priced', async () => {
    await pricing.setPlatformPricing(admin(), { currency: 'USD', instanceTypes: DEFAULT_RATES });
    const owner = seller();
    const priced = newProductCode();
    const unpriced = newProductCode();
    registerProduct(priced, owner.accountId);
    registerProduct(unpriced, owner.accountId);
    await pricing.setProductPricing(owner, priced, {
      currency: 'USD',
      instanceTypes: [{ instanceType: 'c5.xlarge', markup: { percent: '12.5' } }],
      monthlyFee: '0.5',
      signUpFee: '0',
    });
    const quote = await rpc(BillingPattern.pricingQuote, { productCodes: [priced, unpriced, priced] });
    expect(quote).toEqual({
      currency: 'USD',
      instanceTypes: DEFAULT_RATES.map((r) => ({ instanceType: r.instanceType, baseHourly: r.hourly })),
      products: {
        // 0.17 + 12.5% = 0.17 + 0.02125
        [priced]: { instanceTypes: [{ instanceType: 'c5.xlarge', hourly: '0.19125' }], monthlyFee: '0.50', signUpFee: '0.00' },
        [unpriced]: null,
      },
    });
    expect(await rpc(BillingPattern.pricingQuote, { productCodes: [] })).toMatchObject({ products: {} });
  });

  it('takes at most 100 product codes and only valid ones', async () => {
    const many = Array.from({ length: 101 }, () => newProductCode());
    expect(await rpc(BillingPattern.pricingQuote, { productCodes: many }).catch((e: unknown) => e)).toMatchObject({ code: ErrorCode.InvalidParameterValue });
    expect(await rpc(BillingPattern.pricingQuote, { productCodes: ['prod-NOPE'] }).catch((e: unknown) => e)).toMatchObject({ code: ErrorCode.InvalidParameterValue });
    const hundred = await rpc<{ products: object }>(BillingPattern.pricingQuote, { productCodes: many.slice(0, 100) });
    expect(Object.keys(hundred.products)).toHaveLength(100);
  });
});
