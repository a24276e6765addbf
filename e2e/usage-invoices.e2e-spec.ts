import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BillingPattern, PermissionPattern } from '@imagemart/contracts';
import { waitFor } from '@imagemart/testing';
import { monthLabel, monthStart, PlatformClock } from './support/clock.js';
import { expectProblem, http, Platform, type TestAccount } from './support/platform.js';

/**
 * A paid product's month, over HTTP with the five real processes: a buyer subscribes, runs an
 * instance of the product's image through the simulated host and terminates it, reads its usage
 * so far, the month is closed, and the invoice and the seller's revenue report come out to the
 * micro-unit. Every expected amount is computed here from the prices set (docs/pricing.md), never
 * read back from the answers.
 *
 * A month can only be closed once it has ended, so the platform's processes run on a clock of
 * their own (e2e/support/clock.ts): it starts on the last day of the previous calendar month, is
 * moved forward to just before that month ends for the run, and past the end for the close.
 */
let platform: Platform;
let base: string;
let clock: PlatformClock;
let seller: TestAccount;
let buyer: TestAccount;
let other: TestAccount;
let productCode: string;
let imageId: string;
let subscription: { id: string; createdAt: string };

/** The month the story happens in, and the instant it ends. */
const boundary = monthStart(new Date());
const periodStart = monthStart(new Date(boundary.getTime() - 1));
const month = monthLabel(periodStart);
const MINUTE = 60_000;

// Prices of the product: base + 12.5 % per instance-hour of t3.micro, a monthly and a sign-up fee.
const MARKUP_PERCENT = '12.5';
const MONTHLY_FEE = '4.99';
const SIGN_UP_FEE = '1.25';

// Money, as docs/pricing.md states it: micro-units, half up, answers with at least two decimals.
const MICROS = 1_000_000n;
function micros(decimal: string): bigint {
  const [whole = '0', fraction = ''] = decimal.split('.');
  return BigInt(whole) * MICROS + BigInt(fraction.padEnd(6, '0'));
}
function money(value: bigint): string {
  const sign = value < 0n ? '-' : '';
  const abs = value < 0n ? -value : value;
  const fraction = (abs % MICROS).toString().padStart(6, '0').replace(/0+$/, '').padEnd(2, '0');
  return `${sign}${abs / MICROS}.${fraction}`;
}
const roundDiv = (a: bigint, b: bigint) => (a * 2n + b) / (2n * b);
const percentOf = (amount: bigint, percent: bigint) => roundDiv(amount * percent, 100n * MICROS);
const wholeSeconds = (iso: string) => BigInt(Math.floor(new Date(iso).getTime() / 1000));

/** Platform prices, read once: the base rate of t3.micro and the platform fee. */
let baseHourly: bigint;
let feePercent: bigint;
let feeFixed: bigint;

/** An image uploaded with the product's listing, bundled and verified: a bundle the host can start. */
async function uploadedImage(owner: TestAccount, listingId: string): Promise<string> {
  const data = randomBytes(256 * 1024);
  const created = await http(base, 'POST', '/v1/uploads', {
    key: owner.key,
    body: {
      name: `metered ${randomBytes(3).toString('hex')}`,
      architecture: 'x86_64',
      virtualizationType: 'hvm',
      rootDeviceName: '/dev/xvda',
      blockDeviceMappings: [],
      size: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
      listingId,
    },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const { uploadId, imageId: id } = created.body as { uploadId: string; imageId: string };
  const part = await fetch(`${base}/v1/uploads/${uploadId}/parts/1`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${owner.key}`, 'content-type': 'application/octet-stream' },
    body: data,
  });
  expect(part.status, await part.clone().text()).toBe(200);
  expect((await http(base, 'POST', `/v1/uploads/${uploadId}/complete`, { key: owner.key })).status).toBe(200);
  await waitFor(
    async () => {
      const res = await http(base, 'GET', `/v1/images/${id}`, { key: owner.key });
      if (res.body.state === 'failed') throw new Error(JSON.stringify(res.body));
      return res.body.state === 'available';
    },
    { timeoutMs: 60_000, intervalMs: 100, what: 'the uploaded image to become available' },
  );
  return id;
}

const instanceIn = async (account: TestAccount, id: string, state: string) =>
  waitFor(
    async () => {
      const v = (await http(base, 'GET', `/v1/instances/${id}`, { key: account.key })).body;
      if (v.state === 'terminated' && state !== 'terminated')
        throw new Error(`the instance ended: ${JSON.stringify(v)}`);
      return v.state === state ? (v as { runningAt: string; stoppedAt: string | null }) : undefined;
    },
    { timeoutMs: 30_000, what: `the instance to be ${state}` },
  );

beforeAll(async () => {
  clock = new PlatformClock(new Date(boundary.getTime() - 24 * 60 * MINUTE));
  // The month is closed by the test (the sweep would wait an hour after the month ends anyway).
  platform = await Platform.start('usage-invoices', clock.env(), {
    billing: { MONTH_CLOSE_INTERVAL_MS: '0' },
  });
  base = platform.baseUrl;
  [seller, buyer, other] = await Promise.all([
    platform.createAccount(['seller'], 'Metered seller'),
    platform.createAccount(['buyer']),
    platform.createAccount(['buyer']),
  ]);

  const rates = await http(base, 'GET', '/v1/pricing/instance-types');
  expect(rates.status).toBe(200);
  baseHourly = micros(
    rates.body.instanceTypes.find((r: { instanceType: string }) => r.instanceType === 't3.micro').hourly,
  );
  feePercent = micros(rates.body.platformFee.percent);
  feeFixed = micros(rates.body.platformFee.fixedPerBuyer);

  const listing = await http(base, 'POST', '/v1/listings', {
    key: seller.key,
    body: {
      title: `Metered appliance ${randomBytes(3).toString('hex')}`,
      summary: 'A paid product',
      categories: ['security'],
      pricingType: 'paid',
    },
  });
  expect(listing.status, JSON.stringify(listing.body)).toBe(201);
  productCode = listing.body.productCode as string;
  const pricing = {
    currency: 'USD',
    instanceTypes: [{ instanceType: 't3.micro', markup: { percent: MARKUP_PERCENT } }],
    monthlyFee: MONTHLY_FEE,
    signUpFee: SIGN_UP_FEE,
  };
  const priced = await http(base, 'PUT', `/v1/products/${productCode}/pricing`, {
    key: seller.key,
    body: pricing,
  });
  expect(priced.status, JSON.stringify(priced.body)).toBe(200);

  imageId = await uploadedImage(seller, listing.body.listingId as string);
  const shared = await http(base, 'PATCH', `/v1/images/${imageId}/launch-permission`, {
    key: seller.key,
    body: { add: [{ userId: buyer.id }] },
  });
  expect(shared.status, JSON.stringify(shared.body)).toBe(200);

  const sub = await http(base, 'POST', '/v1/subscriptions', { key: buyer.key, body: { productCode } });
  expect(sub.status, JSON.stringify(sub.body)).toBe(201);
  subscription = sub.body as { id: string; createdAt: string };
  expect(new Date(subscription.createdAt) < boundary).toBe(true);
  await waitFor(
    async () =>
      (
        await platform.rpc<{ allowed: boolean }>('permission', PermissionPattern.launchDecide, {
          accountId: buyer.id,
          imageId,
        })
      ).allowed,
    {
      what: 'the launch decision to see the subscription',
    },
  );
}, 180_000);

afterAll(async () => {
  await platform?.stop();
  clock?.remove();
});

describe('a metered month of a paid product', () => {
  let run: { seconds: bigint; runningAt: string; stoppedAt: string };
  const hourly = () => baseHourly + percentOf(baseHourly, micros(MARKUP_PERCENT));
  const usageAmount = () => roundDiv(run.seconds * hourly(), 3600n);
  const usageBase = () => roundDiv(run.seconds * baseHourly, 3600n);

  it('meters a run through the simulated host, and shows the usage so far to the second and the micro-unit', async () => {
    await clock.jumpTo(new Date(boundary.getTime() - 20 * MINUTE));
    const launched = await http(base, 'POST', '/v1/instances', {
      key: buyer.key,
      body: { imageId, instanceType: 't3.micro' },
    });
    expect(launched.status, JSON.stringify(launched.body)).toBe(201);
    const instanceId = launched.body.instances[0].instanceId as string;
    expect(launched.body.instances[0].productCode).toBe(productCode);
    const running = await instanceIn(buyer, instanceId, 'running');

    // Eleven minutes of the processes' clock pass while it runs.
    await clock.jumpTo(new Date(clock.now().getTime() + 11 * MINUTE));
    const terminating = await http(base, 'POST', `/v1/instances/${instanceId}/terminate`, { key: buyer.key });
    expect(terminating.status, JSON.stringify(terminating.body)).toBe(200);
    const stopped = await instanceIn(buyer, instanceId, 'terminated');
    expect(stopped.runningAt).toBe(running.runningAt);
    const stoppedAt = stopped.stoppedAt as string;
    expect(new Date(stoppedAt) < boundary).toBe(true);
    // Per second, from whole second to whole second (the 60 s minimum does not apply to this run).
    run = {
      runningAt: running.runningAt,
      stoppedAt,
      seconds: wholeSeconds(stoppedAt) - wholeSeconds(running.runningAt),
    };
    expect(run.seconds).toBeGreaterThanOrEqual(11n * 60n);

    // Billing learns of the stop from the catalog's event.
    const usage = await waitFor(
      async () => {
        const res = await http(base, 'GET', '/v1/usage', { key: buyer.key });
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        return res.body.lines[0]?.seconds === Number(run.seconds) ? res.body : undefined;
      },
      { what: 'the usage so far to show the whole run' },
    );
    expect(usage).toEqual({
      accountId: buyer.id,
      currency: 'USD',
      periodStart: periodStart.toISOString(),
      periodEnd: boundary.toISOString(),
      asOf: expect.any(String),
      lines: [
        {
          productCode,
          instanceType: 't3.micro',
          instances: 1,
          seconds: Number(run.seconds),
          hourly: money(hourly()),
          amount: money(usageAmount()),
        },
      ],
      total: money(usageAmount()),
    });
    expect(new Date(usage.asOf) < boundary).toBe(true);
    expect(new Date(usage.asOf) >= new Date(stoppedAt)).toBe(true);
  });

  it('closes the month once it has ended: one invoice, its lines and total to the micro-unit', async () => {
    expect(run, 'the run of the test before').toBeDefined();
    // Not before the month has ended.
    await expect(platform.rpc('billing', BillingPattern.invoicesCloseMonth, { month })).rejects.toThrow(
      'IncorrectState',
    );
    expect((await http(base, 'GET', '/v1/invoices', { key: buyer.key })).body.items).toEqual([]);

    await clock.jumpTo(new Date(boundary.getTime() + 1000));
    const closed = await platform.rpc('billing', BillingPattern.invoicesCloseMonth, { month }, 30);
    expect(closed).toEqual({ month, buyers: 1, invoices: 1, creditNotes: 0 });

    const list = await http(base, 'GET', '/v1/invoices', { key: buyer.key });
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    expect(list.body.items).toHaveLength(1);
    const summary = list.body.items[0];

    // The first month of the subscription: the sign-up fee, the monthly fee prorated to the
    // millisecond from the moment of subscribing to the end of the month, and the usage line.
    const monthMs = BigInt(boundary.getTime() - periodStart.getTime());
    const usedMs = BigInt(boundary.getTime() - new Date(subscription.createdAt).getTime());
    const monthlyFee = roundDiv(micros(MONTHLY_FEE) * usedMs, monthMs);
    const total = micros(SIGN_UP_FEE) + monthlyFee + usageAmount();
    expect(summary).toMatchObject({
      kind: 'invoice',
      accountId: buyer.id,
      period: month,
      status: 'open',
      currency: 'USD',
      total: money(total),
      correctsInvoiceId: null,
    });
    expect(summary.number).toMatch(new RegExp(`^IM-${month.replace('-', '')}-\\d{7}$`));

    const invoice = await http(base, 'GET', `/v1/invoices/${summary.invoiceId}`, { key: buyer.key });
    expect(invoice.status, JSON.stringify(invoice.body)).toBe(200);
    const fee = {
      servicePeriod: month,
      productCode,
      subscriptionId: subscription.id,
      instanceType: null,
      seconds: null,
      unitPrice: null,
    };
    expect(invoice.body).toEqual({
      ...summary,
      lines: [
        { ...fee, kind: 'sign_up_fee', description: expect.any(String), amount: money(micros(SIGN_UP_FEE)) },
        {
          ...fee,
          kind: 'monthly_fee',
          description: expect.stringContaining('prorated'),
          amount: money(monthlyFee),
        },
        {
          kind: 'usage',
          description: expect.stringContaining(`${run.seconds} instance-seconds`),
          servicePeriod: month,
          productCode,
          instanceType: 't3.micro',
          subscriptionId: null,
          seconds: Number(run.seconds),
          unitPrice: money(hourly()),
          amount: money(usageAmount()),
        },
      ],
    });
    expectProblem(
      await http(base, 'GET', `/v1/invoices/${summary.invoiceId}`, { key: other.key }),
      404,
      'InvalidInvoiceID.NotFound',
    );

    // Closing again bills nobody twice; the new month's usage so far starts empty.
    expect(await platform.rpc('billing', BillingPattern.invoicesCloseMonth, { month }, 30)).toEqual({
      month,
      buyers: 0,
      invoices: 0,
      creditNotes: 0,
    });
    expect((await http(base, 'GET', '/v1/invoices', { key: buyer.key })).body.items).toHaveLength(1);
    const next = await http(base, 'GET', '/v1/usage', { key: buyer.key });
    expect(next.body).toMatchObject({ periodStart: boundary.toISOString(), lines: [], total: '0.00' });
  });

  it("gives the seller's revenue report of the month: gross, base usage cost, platform fee and net", async () => {
    expect(run, 'the run of the test before').toBeDefined();
    const monthMs = BigInt(boundary.getTime() - periodStart.getTime());
    const usedMs = BigInt(boundary.getTime() - new Date(subscription.createdAt).getTime());
    const monthlyFee = roundDiv(micros(MONTHLY_FEE) * usedMs, monthMs);
    const markup = usageAmount() - usageBase();
    const gross = markup + monthlyFee + micros(SIGN_UP_FEE);
    const platformFee = percentOf(gross, feePercent) + feeFixed;
    const amounts = {
      gross: money(gross),
      markup: money(markup),
      monthlyFees: money(monthlyFee),
      signUpFees: money(micros(SIGN_UP_FEE)),
      baseUsageCost: money(usageBase()),
      buyers: 1,
    };

    const report = await http(base, 'GET', `/v1/revenue?month=${month}`, { key: seller.key });
    expect(report.status, JSON.stringify(report.body)).toBe(200);
    expect(report.body).toEqual({
      sellerId: seller.id,
      month,
      currency: 'USD',
      ...amounts,
      platformFee: money(platformFee),
      net: money(gross - platformFee),
      products: [{ productCode, ...amounts }],
    });
    // The platform keeps the base cost: the buyer paid exactly the seller's gross and it.
    expect(micros(report.body.gross) + micros(report.body.baseUsageCost)).toBe(
      micros(SIGN_UP_FEE) + monthlyFee + usageAmount(),
    );

    // The month after has no finalised bill yet.
    const nextMonth = monthLabel(boundary);
    const empty = await http(base, 'GET', `/v1/revenue?month=${nextMonth}`, { key: seller.key });
    expect(empty.body).toMatchObject({
      month: nextMonth,
      gross: '0.00',
      platformFee: '0.00',
      net: '0.00',
      buyers: 0,
      products: [],
    });
  });
});
