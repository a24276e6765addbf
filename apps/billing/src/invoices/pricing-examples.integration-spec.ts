import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller, InvoiceView } from '@imagemart/contracts';
import {
  createTestDatabase,
  createTestRedisPrefix,
  type TestDatabase,
  type TestRedisPrefix,
} from '@imagemart/testing';
import { PricingService } from '../pricing/pricing.service.js';
import { RevenueService } from '../revenue/revenue.service.js';
import { SubscriptionsService } from '../subscriptions/subscriptions.service.js';
import {
  buyer,
  inRequest,
  registerProduct,
  seller,
  startBillingTestEnv,
  type BillingTestEnv,
} from '../testing/billing-test-env.fixture.js';
import { UsageIngestBatcher } from '../usage/usage-ingest.batcher.js';
import { instanceEvent } from '../usage/usage-event.fixture.js';
import { InvoicesService } from './invoices.service.js';

/**
 * The worked examples of docs/pricing.md ("Worked examples"), built through the services exactly
 * as written there, with exactly the amounts written there. Change one, change both.
 */

let db: TestDatabase;
let redis: TestRedisPrefix;
let env: BillingTestEnv;
let invoices: InvoicesService;
let revenue: RevenueService;
let batcher: UsageIngestBatcher;

const sam = seller('100000000001');
const xena = buyer('200000000002');
const productA = 'prod-examplea000000000001';
const productB = 'prod-exampleb000000000002';

const lines = (invoice: InvoiceView) =>
  invoice.lines.map((l) => [
    l.kind,
    l.servicePeriod,
    l.productCode,
    l.instanceType,
    l.seconds,
    l.unitPrice,
    l.amount,
  ]);
const onlyInvoice = async (caller: Caller, period: string, kind = 'invoice') => {
  const page = await invoices.list(caller, 100);
  const found = page.items.filter((i) => i.period === period && i.kind === kind);
  expect(found).toHaveLength(1);
  return invoices.get(caller, found[0].invoiceId);
};
const usage = (e: Parameters<typeof instanceEvent>[0]) => batcher.submit(instanceEvent(e));

beforeAll(async () => {
  db = await createTestDatabase('billing-pricing-examples');
  redis = createTestRedisPrefix('billing-pricing-examples');
  env = await startBillingTestEnv({ prisma: db.prisma, redisUrl: redis.url, prefix: redis.prefix });
  invoices = env.moduleRef.get(InvoicesService);
  revenue = env.moduleRef.get(RevenueService);
  batcher = env.moduleRef.get(UsageIngestBatcher);
  const pricing = env.moduleRef.get(PricingService);
  const subscriptions = env.moduleRef.get(SubscriptionsService);

  registerProduct(productA, sam.accountId, 'Product A');
  registerProduct(productB, sam.accountId, 'Product B');
  await pricing.setProductPricing(sam, productA, {
    currency: 'USD',
    instanceTypes: [
      { instanceType: 't3.micro', markup: { amount: '0.004' } },
      { instanceType: 'm5.large', markup: { percent: '25' } },
    ],
    monthlyFee: '30',
    signUpFee: '10',
  });
  await pricing.setProductPricing(sam, productB, {
    currency: 'USD',
    instanceTypes: [{ instanceType: 't3.small', markup: { amount: '0.01' } }],
    monthlyFee: '9.99',
    signUpFee: '0',
  });

  // October: Xena subscribes to B on the 5th.
  const subB = await inRequest('req-sub-b', () =>
    subscriptions.create(xena, productB, new Date('2026-10-05T00:00:00Z')),
  );
  await subscriptions.sweep(new Date('2026-11-01T00:00:00Z'));
  await invoices.closeMonth('2026-10', new Date('2026-11-01T01:00:00Z'));

  // November: she cancels B on the 10th (it runs to the end of November), subscribes to A on
  // the 16th, and runs four instances.
  await inRequest('req-cancel-b', () =>
    subscriptions.cancel(xena, subB.id, new Date('2026-11-10T00:00:00Z')),
  );
  await inRequest('req-sub-a', () => subscriptions.create(xena, productA, new Date('2026-11-16T00:00:00Z')));
  const common = { accountId: xena.accountId, sellerId: sam.accountId };
  await Promise.all([
    usage({
      ...common,
      productCode: productA,
      instanceType: 't3.micro',
      runningAt: '2026-11-16T10:00:00Z',
      stoppedAt: '2026-11-18T10:00:00Z',
    }),
    usage({
      ...common,
      instanceId: 'i-0000000000000e002',
      productCode: productA,
      instanceType: 'm5.large',
      runningAt: '2026-11-20T00:00:00Z',
    }),
    usage({
      ...common,
      productCode: null,
      instanceType: 'c5.xlarge',
      runningAt: '2026-11-25T12:00:00Z',
      stoppedAt: '2026-11-25T12:20:30Z',
    }),
    usage({
      ...common,
      productCode: productB,
      instanceType: 't3.small',
      runningAt: '2026-11-29T00:00:00Z',
      stoppedAt: '2026-11-29T00:00:45Z',
    }),
  ]);
  await subscriptions.sweep(new Date('2026-12-01T00:00:00Z'));
  await invoices.closeMonth('2026-11', new Date('2026-12-01T01:00:00Z'));

  // December: the m5.large stops at 06:00 on the 1st; then a t3.micro run of November 30th
  // arrives late, after November was closed.
  await usage({
    ...common,
    instanceId: 'i-0000000000000e002',
    productCode: productA,
    instanceType: 'm5.large',
    runningAt: '2026-11-20T00:00:00Z',
    stoppedAt: '2026-12-01T06:00:00Z',
  });
  await usage({
    ...common,
    productCode: productA,
    instanceType: 't3.micro',
    runningAt: '2026-11-30T20:00:00Z',
    stoppedAt: '2026-11-30T22:00:00Z',
  });
  await subscriptions.sweep(new Date('2027-01-01T00:00:00Z'));
  await invoices.closeMonth('2026-12', new Date('2027-01-01T01:00:00Z'));
});

afterAll(async () => {
  await env?.close();
  await redis?.cleanup();
  await db?.drop();
});

describe('worked examples (docs/pricing.md)', () => {
  it('October: the first month of B is prorated, 27 of 31 days', async () => {
    const october = await onlyInvoice(xena, '2026-10');
    expect(lines(october)).toEqual([['monthly_fee', '2026-10', productB, null, null, null, '8.700968']]);
    expect(october.total).toBe('8.700968');
  });

  it('November: a mid-month subscription, a cancellation, three instance types, a free image and a short run', async () => {
    const november = await onlyInvoice(xena, '2026-11');
    expect(lines(november)).toEqual([
      ['sign_up_fee', '2026-11', productA, null, null, null, '10.00'],
      ['monthly_fee', '2026-11', productA, null, null, null, '15.00'],
      ['monthly_fee', '2026-11', productB, null, null, null, '9.99'],
      ['usage', '2026-11', productA, 'm5.large', 950400, '0.12', '31.68'],
      ['usage', '2026-11', productA, 't3.micro', 172800, '0.0144', '0.6912'],
      ['usage', '2026-11', productB, 't3.small', 60, '0.0308', '0.000513'],
      ['usage', '2026-11', null, 'c5.xlarge', 1230, '0.17', '0.058083'],
    ]);
    expect(november).toMatchObject({ total: '67.419796', status: 'open', kind: 'invoice' });
    expect(november.number).toMatch(/^IM-202611-\d{7}$/);
  });

  it('December: the monthly fee of A only (B ended), the rest of the m5.large, and the late run as an adjustment', async () => {
    const december = await onlyInvoice(xena, '2026-12');
    expect(lines(december)).toEqual([
      ['monthly_fee', '2026-12', productA, null, null, null, '30.00'],
      ['usage', '2026-12', productA, 'm5.large', 21600, '0.12', '0.72'],
      ['usage_adjustment', '2026-11', productA, 't3.micro', 7200, '0.0144', '0.0288'],
    ]);
    expect(december.total).toBe('30.7488');
    const all = await invoices.list(xena, 100);
    expect(all.items.filter((i) => i.kind === 'credit_note')).toEqual([]);
  });

  it("Sam's revenue report for November and December", async () => {
    await expect(revenue.report(sam, '2026-11')).resolves.toMatchObject({
      gross: '41.518166',
      markup: '6.528166',
      monthlyFees: '24.99',
      signUpFees: '10.00',
      baseUsageCost: '25.843547',
      platformFee: '1.545545',
      net: '39.972621',
      buyers: 1,
    });
    await expect(revenue.report(sam, '2026-12')).resolves.toMatchObject({
      gross: '30.152',
      markup: '0.152',
      monthlyFees: '30.00',
      signUpFees: '0.00',
      baseUsageCost: '0.5968',
      platformFee: '1.20456',
      net: '28.94744',
      buyers: 1,
    });
  });
});
