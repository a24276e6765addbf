import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BillingPattern, QueueName, type CloseMonthResult } from '@imagemart/contracts';
import { sendRpc } from '@imagemart/messaging';
import {
  createTestDatabase,
  createTestRedisPrefix,
  type TestDatabase,
  type TestRedisPrefix,
} from '@imagemart/testing';
import { PricingService } from '../pricing/pricing.service.js';
import { RevenueService } from '../revenue/revenue.service.js';
import {
  admin,
  buyer,
  codeOf,
  newProductCode,
  registerProduct,
  seller,
  startBillingTestEnv,
  type BillingTestEnv,
} from '../testing/billing-test-env.fixture.js';
import { UsageIngestBatcher } from '../usage/usage-ingest.batcher.js';
import { instanceEvent, newInstanceId } from '../usage/usage-event.fixture.js';
import { InvoicesService } from './invoices.service.js';
import { MonthCloseSweeper } from './month-close.sweeper.js';

let db: TestDatabase;
let redis: TestRedisPrefix;
let env: BillingTestEnv;
let invoices: InvoicesService;
let batcher: UsageIngestBatcher;
let revenue: RevenueService;
const owner = seller();
let product: string;

beforeAll(async () => {
  db = await createTestDatabase('billing-invoices');
  redis = createTestRedisPrefix('billing-invoices');
  env = await startBillingTestEnv({
    prisma: db.prisma,
    redisUrl: redis.url,
    prefix: redis.prefix,
    serveBilling: true,
  });
  invoices = env.moduleRef.get(InvoicesService);
  batcher = env.moduleRef.get(UsageIngestBatcher);
  revenue = env.moduleRef.get(RevenueService);
  product = newProductCode();
  registerProduct(product, owner.accountId);
  await env.moduleRef.get(PricingService).setProductPricing(owner, product, {
    currency: 'USD',
    instanceTypes: [{ instanceType: 't3.micro', markup: { amount: '0.0096' } }], // 0.02 an hour in all
    monthlyFee: '0',
    signUpFee: '0',
  });
});

afterAll(async () => {
  await env?.close();
  await redis?.cleanup();
  await db?.drop();
});

const hours = (
  accountId: string,
  runningAt: string,
  stoppedAt: string | null,
  instanceId = newInstanceId(),
  revision?: number,
) =>
  batcher.submit(
    instanceEvent({
      instanceId,
      accountId,
      sellerId: owner.accountId,
      productCode: product,
      instanceType: 't3.micro',
      runningAt,
      stoppedAt,
      revision,
    }),
  );

describe('month close', () => {
  it('bills usage once: closing the month again, or from two replicas at once, makes no second invoice', async () => {
    const me = buyer();
    await hours(me.accountId, '2026-06-01T00:00:00Z', '2026-06-01T10:00:00Z'); // 10 h × 0.02
    const [a, b] = await Promise.all([
      invoices.closeMonth('2026-06', new Date('2026-07-02T00:00:00Z')),
      invoices.closeMonth('2026-06', new Date('2026-07-02T00:00:00Z')),
    ]);
    expect(a.buyers + b.buyers).toBe(1);
    expect(a.invoices + b.invoices).toBe(1);
    const again = await sendRpc<CloseMonthResult>(env.billing!, BillingPattern.invoicesCloseMonth, {
      month: '2026-06',
    });
    expect(again).toEqual({ month: '2026-06', buyers: 0, invoices: 0, creditNotes: 0 });
    const page = await invoices.list(me, 10);
    expect(page.items).toHaveLength(1);
    expect(page.items[0]).toMatchObject({
      period: '2026-06',
      status: 'open',
      total: '0.20',
      kind: 'invoice',
      accountId: me.accountId,
    });
    expect(await invoices.closed('2026-06')).toBe(true);
    // The built-in ledger alone: nothing is asked of Stripe.
    expect(await db.prisma.billingOutboxEvent.count({ where: { queue: QueueName.stripeSync } })).toBe(0);
  });

  it('refuses to close a month that has not ended', async () => {
    expect(await codeOf(invoices.closeMonth('2026-07', new Date('2026-07-31T23:59:59Z')))).toBe(
      'IncorrectState',
    );
  });

  it('closes buyers together yet bills each only its own usage and its own corrections', async () => {
    const [corrected, plain, later] = [buyer(), buyer(), buyer()];
    const changing = newInstanceId();
    await hours(corrected.accountId, '2025-03-10T00:00:00Z', '2025-03-10T05:00:00Z', changing, 3); // 5 h
    await hours(plain.accountId, '2025-03-11T00:00:00Z', '2025-03-11T02:00:00Z'); // 2 h
    await invoices.closeMonth('2025-03', new Date('2025-04-01T01:00:00Z'));
    const march = async (who: typeof plain) => (await invoices.list(who, 10)).items.filter((i) => i.period === '2025-03').map((i) => i.total);
    expect([await march(corrected), await march(plain), await march(later)]).toEqual([['0.10'], ['0.04'], []]);

    // After March is final: the first buyer's run really lasted 7 h; the others only run in April.
    await hours(corrected.accountId, '2025-03-10T00:00:00Z', '2025-03-10T07:00:00Z', changing, 4);
    await hours(plain.accountId, '2025-04-02T00:00:00Z', '2025-04-02T01:00:00Z'); // 1 h
    await hours(later.accountId, '2025-04-03T00:00:00Z', '2025-04-03T03:00:00Z'); // 3 h
    await invoices.closeMonth('2025-04', new Date('2025-05-01T01:00:00Z'));

    const april = async (who: typeof plain) => {
      const [doc] = (await invoices.list(who, 10)).items.filter((i) => i.period === '2025-04');
      return (await invoices.get(who, doc.invoiceId)).lines.map((l) => [l.kind, l.servicePeriod, l.seconds, l.amount]);
    };
    expect(await april(corrected)).toEqual([['usage_adjustment', '2025-03', 7200, '0.04']]);
    expect(await april(plain)).toEqual([['usage', '2025-04', 3600, '0.02']]);
    expect(await april(later)).toEqual([['usage', '2025-04', 10800, '0.06']]);
  });

  it('turns a late shorter run into a credit note and a late longer one into an adjustment on the next bill', async () => {
    const me = buyer();
    const shortened = newInstanceId();
    await hours(me.accountId, '2026-08-10T00:00:00Z', '2026-08-10T05:00:00Z', shortened, 3); // 5 h
    await hours(me.accountId, '2026-08-20T00:00:00Z', '2026-08-20T01:00:00Z'); // 1 h
    await invoices.closeMonth('2026-08', new Date('2026-09-01T01:00:00Z'));
    const august = (await invoices.list(me, 10)).items.find((i) => i.period === '2026-08')!;
    expect(august.total).toBe('0.12'); // 6 h × 0.02

    // Newer revisions, after August is final: the first instance really stopped after 2 h, and
    // a run of 4 h in August arrives only now.
    await hours(me.accountId, '2026-08-10T00:00:00Z', '2026-08-10T02:00:00Z', shortened, 4);
    await hours(me.accountId, '2026-08-30T00:00:00Z', '2026-08-30T04:00:00Z');
    await invoices.closeMonth('2026-09', new Date('2026-10-01T01:00:00Z'));

    const all = (await invoices.list(me, 10)).items;
    const septemberInvoice = all.find((i) => i.period === '2026-09' && i.kind === 'invoice')!;
    const creditNote = all.find((i) => i.period === '2026-09' && i.kind === 'credit_note');
    // Same product and instance type: 3 h less and 4 h more net to 1 h more on the September bill.
    const september = await invoices.get(me, septemberInvoice.invoiceId);
    expect(september.lines.map((l) => [l.kind, l.servicePeriod, l.seconds, l.amount])).toEqual([
      ['usage_adjustment', '2026-08', 3600, '0.02'],
    ]);
    expect(creditNote).toBeUndefined();
    // The August invoice itself is unchanged.
    expect((await invoices.get(me, august.invoiceId)).total).toBe('0.12');

    // Less usage than billed gives a credit note that names the invoice it corrects.
    await hours(
      me.accountId,
      '2026-08-30T00:00:00Z',
      '2026-08-30T00:30:00Z',
      (await db.prisma.usageRecord.findFirst({
        where: { accountId: me.accountId, runningAt: new Date('2026-08-30T00:00:00Z') },
      }))!.id,
      9,
    );
    await invoices.closeMonth('2026-10', new Date('2026-11-01T01:00:00Z'));
    const credit = (await invoices.list(me, 10)).items.find((i) => i.kind === 'credit_note')!;
    expect(credit).toMatchObject({
      period: '2026-10',
      total: '-0.07',
      correctsInvoiceId: august.invoiceId,
      status: 'open',
    });
    expect(credit.invoiceId).toMatch(/^cn-/);
    const lines = (await invoices.get(me, credit.invoiceId)).lines;
    expect(lines.map((l) => [l.kind, l.servicePeriod, l.seconds, l.amount])).toEqual([
      ['usage_adjustment', '2026-08', -12600, '-0.07'],
    ]);
    // And the seller's revenue of October gives back the markup of those 3.5 h, with its fee percentage.
    await expect(revenue.report(owner, '2026-10')).resolves.toMatchObject({
      gross: '-0.0336',
      markup: '-0.0336',
      baseUsageCost: '-0.0364',
      platformFee: '-0.001008',
      net: '-0.032592',
      buyers: 0,
    });
  });

  it('the sweep closes last month once the grace period has passed', async () => {
    const me = buyer();
    await hours(me.accountId, '2026-02-01T00:00:00Z', '2026-02-01T01:00:00Z');
    const sweeper = env.moduleRef.get(MonthCloseSweeper);
    await sweeper.sweep(3_600_000, new Date('2026-03-01T00:30:00Z')); // within the grace: January's turn
    expect((await invoices.list(me, 10)).items).toEqual([]);
    await sweeper.sweep(3_600_000, new Date('2026-03-01T01:30:00Z'));
    expect((await invoices.list(me, 10)).items.map((i) => i.period)).toEqual(['2026-02']);
  });
});

describe('invoices are immutable once finalised', () => {
  it('refuses changing a line, adding one, deleting one, or changing the total, in the database itself', async () => {
    const me = buyer();
    await hours(me.accountId, '2026-04-01T00:00:00Z', '2026-04-01T01:00:00Z');
    await invoices.closeMonth('2026-04', new Date('2026-05-01T01:00:00Z'));
    const { invoiceId } = (await invoices.list(me, 10)).items[0];
    const line = await db.prisma.invoiceLine.findFirstOrThrow({ where: { invoiceId } });
    await expect(
      db.prisma
        .$executeRaw`UPDATE billing.invoice_line SET amount = 0, base_amount = 0, seller_amount = 0 WHERE id = ${line.id}::uuid`,
    ).rejects.toThrow(/immutable/);
    await expect(
      db.prisma.$executeRaw`DELETE FROM billing.invoice_line WHERE id = ${line.id}::uuid`,
    ).rejects.toThrow(/immutable/);
    await expect(
      db.prisma
        .$executeRaw`INSERT INTO billing.invoice_line (id, invoice_id, position, kind, description, service_period, base_amount, seller_amount, amount)
                            VALUES (gen_random_uuid(), ${invoiceId}, 9, 'usage', 'extra', now(), 1, 0, 1)`,
    ).rejects.toThrow(/immutable/);
    await expect(
      db.prisma.$executeRaw`UPDATE billing.invoice SET total = 0 WHERE id = ${invoiceId}`,
    ).rejects.toThrow(/immutable/);
    await expect(db.prisma.$executeRaw`DELETE FROM billing.invoice WHERE id = ${invoiceId}`).rejects.toThrow(
      /cannot be deleted/,
    );
    // Payment is the one change left: open → paid, and never back.
    await db.prisma
      .$executeRaw`UPDATE billing.invoice SET status = 'paid', paid_at = now() WHERE id = ${invoiceId}`;
    await expect(
      db.prisma.$executeRaw`UPDATE billing.invoice SET status = 'open' WHERE id = ${invoiceId}`,
    ).rejects.toThrow(/cannot go from paid to open/);
    expect((await invoices.get(me, invoiceId)).status).toBe('paid');
  });
});

describe('who may read an invoice', () => {
  it("answers another buyer's invoice exactly as a missing one; an admin reads any", async () => {
    const me = buyer();
    await hours(me.accountId, '2026-05-01T00:00:00Z', '2026-05-01T01:00:00Z');
    await invoices.closeMonth('2026-05', new Date('2026-06-01T01:00:00Z'));
    const { invoiceId } = (await invoices.list(me, 10)).items[0];
    expect(await codeOf(invoices.get(buyer(), invoiceId))).toBe('InvalidInvoiceID.NotFound');
    expect(await codeOf(invoices.get(me, 'in-00000000000000000'))).toBe('InvalidInvoiceID.NotFound');
    await expect(invoices.get(admin(), invoiceId)).resolves.toMatchObject({
      invoiceId,
      accountId: me.accountId,
    });
    expect(await codeOf(invoices.list(buyer(), 10, undefined, me.accountId))).toBe('UnauthorizedOperation');
    expect((await invoices.list(admin(), 10, undefined, me.accountId)).items).toHaveLength(1);
    expect(await codeOf(revenue.report(buyer(), '2026-05'))).toBe('UnauthorizedOperation');
    expect(await codeOf(revenue.report(seller(), '2026-05', owner.accountId))).toBe('UnauthorizedOperation');
    await expect(revenue.report(admin(), '2026-05', owner.accountId)).resolves.toMatchObject({
      sellerId: owner.accountId,
      gross: '0.0096',
    });
  });

  it('pages newest first with a cursor', async () => {
    const me = buyer();
    for (const m of ['2025-01', '2025-02', '2025-03']) {
      await hours(me.accountId, `${m}-02T00:00:00Z`, `${m}-02T01:00:00Z`);
      await invoices.closeMonth(m, new Date('2026-01-01T00:00:00Z'));
    }
    const first = await invoices.list(me, 2);
    expect(first.items.map((i) => i.period)).toEqual(['2025-03', '2025-02']);
    const second = await invoices.list(me, 2, first.nextCursor!);
    expect(second.items.map((i) => i.period)).toEqual(['2025-01']);
    expect(second.nextCursor).toBeNull();
    expect(await codeOf(invoices.list(me, 2, 'nonsense'))).toBe('InvalidPaginationToken');
  });
});
