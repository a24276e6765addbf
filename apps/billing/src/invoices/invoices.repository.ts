import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { Prisma, PrismaClient, type Invoice, type InvoiceLine } from '@imagemart/database';
import { decimalToMicros, microsToPercent, type InvoiceKind } from '@imagemart/contracts';
import type { UsageGroup } from '../usage/usage.repository.js';
import { usageKey } from '../usage/usage.repository.js';
import type { BilledSubscription, LineDraft } from './invoice.calculator.js';

type Tx = Prisma.TransactionClient | PrismaClient;

export type { Invoice, InvoiceLine };
export type InvoiceWithLines = Invoice & { lines: InvoiceLine[] };

/** An exact database decimal (possibly negative) as micro-units. */
export const micros = (d: Prisma.Decimal): bigint => {
  const text = d.toFixed(6);
  return text.startsWith('-') ? -decimalToMicros(text.slice(1)) : decimalToMicros(text);
};
/** `2026-11`: the month a period starts in. */
const monthKey = (periodStart: Date): string => periodStart.toISOString().slice(0, 7);
/** Micro-units as a decimal string the database takes exactly. */
const decimal = (m: bigint): string => microsToPercent(m);

export interface NewDocument {
  kind: InvoiceKind;
  accountId: string;
  periodStart: Date;
  periodEnd: Date;
  currency: string;
  feePercentMicros: bigint;
  feeFixedMicros: bigint;
  correctsId: string | null;
  lines: LineDraft[];
  finalizedAt: Date;
}

/** A document as the close reports it. */
export type DocumentRef = Pick<Invoice, 'id' | 'kind'>;

export interface InvoiceCursor {
  createdAt: Date;
  id: string;
}

/** Invoices, credit notes, their lines and the month-close work list. */
@Injectable()
export class InvoicesRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** Puts every buyer with something to bill in the month on the work list (once). */
  async enlistBuyers(periodStart: Date, periodEnd: Date): Promise<number> {
    return this.prisma.$executeRaw`
      INSERT INTO billing.month_close (id, period_start, account_id)
      SELECT ${monthKey(periodStart)} || ':' || account_id, ${periodStart}, account_id FROM (
        SELECT account_id FROM billing.usage_record
         WHERE running_at IS NOT NULL AND running_at < ${periodEnd} AND (stopped_at IS NULL OR stopped_at >= ${periodStart})
        UNION
        -- Records changed since the month began may correct an earlier month: their buyer's
        -- next bill carries the correction.
        SELECT account_id FROM billing.usage_record WHERE updated_at >= ${periodStart} AND running_at < ${periodEnd}
        UNION
        SELECT account_id FROM billing.subscription WHERE created_at < ${periodEnd} AND (ended_at IS NULL OR ended_at > ${periodStart})
      ) buyers
      ON CONFLICT DO NOTHING`;
  }

  /** Takes up to `limit` buyers of the month not yet closed, locked for this transaction; other replicas skip them. */
  async claimBuyers(tx: Prisma.TransactionClient, periodStart: Date, limit: number): Promise<string[]> {
    const rows = await tx.$queryRaw<{ account_id: string }[]>`
      SELECT account_id FROM billing.month_close
       WHERE period_start = ${periodStart} AND closed_at IS NULL
       ORDER BY account_id
       LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
    return rows.map((r) => r.account_id);
  }

  /**
   * Marks a buyer's month closed at the database's clock (the transaction's start, before it read
   * the usage): usage records changed after that are recounted at the next close.
   */
  async markClosed(tx: Prisma.TransactionClient, periodStart: Date, accountIds: readonly string[]): Promise<void> {
    await tx.$executeRaw`
      UPDATE billing.month_close SET closed_at = CURRENT_TIMESTAMP, updated_at = CURRENT_TIMESTAMP
       WHERE period_start = ${periodStart} AND account_id = ANY(${accountIds as string[]}::text[])`;
  }

  async pendingBuyers(periodStart: Date): Promise<number> {
    return this.prisma.monthClose.count({ where: { periodStart, closedAt: null } });
  }

  /** When each account's latest earlier month was closed; an account never closed is absent. */
  async lastClosedAt(tx: Tx, accountIds: readonly string[], before: Date): Promise<Map<string, Date>> {
    const rows = await tx.$queryRaw<{ account_id: string; closed_at: Date }[]>`
      SELECT account_id, max(closed_at) AS closed_at FROM billing.month_close
       WHERE account_id = ANY(${accountIds as string[]}::text[]) AND period_start < ${before} AND closed_at IS NOT NULL
       GROUP BY account_id`;
    return new Map(rows.map((r) => [r.account_id, r.closed_at]));
  }

  async runCompleted(periodStart: Date): Promise<boolean> {
    const row = await this.prisma.monthCloseRun.findUnique({ where: { id: periodStart } });
    return row?.completedAt != null;
  }

  async completeRun(periodStart: Date, at: Date): Promise<void> {
    await this.prisma.$executeRaw`
      INSERT INTO billing.month_close_run (period_start, completed_at) VALUES (${periodStart}, ${at})
      ON CONFLICT (period_start) DO UPDATE SET completed_at = excluded.completed_at, updated_at = CURRENT_TIMESTAMP`;
  }

  /** Each account's subscriptions live at some time in [start, end); an account without is absent. */
  async subscriptionsIn(tx: Tx, accountIds: readonly string[], start: Date, end: Date): Promise<Map<string, BilledSubscription[]>> {
    const rows = await tx.subscription.findMany({
      where: { accountId: { in: [...accountIds] }, createdAt: { lt: end }, OR: [{ endedAt: null }, { endedAt: { gt: start } }] },
      orderBy: [{ accountId: 'asc' }, { createdAt: 'asc' }, { id: 'asc' }],
      select: {
        accountId: true,
        id: true,
        productCode: true,
        sellerId: true,
        createdAt: true,
        endedAt: true,
        cancelAtPeriodEnd: true,
        currentPeriodEnd: true,
      },
    });
    const byAccount = new Map<string, BilledSubscription[]>();
    for (const { accountId, ...r } of rows) {
      // A cancelled subscription ends with its period even if the subscription sweep has not run yet.
      const billed = { ...r, endedAt: r.endedAt ?? (r.cancelAtPeriodEnd ? r.currentPeriodEnd : null) };
      const list = byAccount.get(accountId);
      if (list) list.push(billed);
      else byAccount.set(accountId, [billed]);
    }
    return byAccount;
  }

  /** Usage seconds already billed for a month (documents not void), by product, seller and instance type. */
  async billedUsage(tx: Tx, accountId: string, servicePeriod: Date): Promise<Map<string, UsageGroup>> {
    const rows = await tx.$queryRaw<
      { product_code: string | null; seller_id: string | null; instance_type: string; seconds: bigint }[]
    >`
      SELECT l.product_code, l.seller_id, l.instance_type, sum(l.seconds)::bigint AS seconds
        FROM billing.invoice_line l JOIN billing.invoice i ON i.id = l.invoice_id
       WHERE i.account_id = ${accountId} AND i.status IN ('open', 'paid') AND l.service_period = ${servicePeriod}
         AND l.kind IN ('usage', 'usage_adjustment')
       GROUP BY l.product_code, l.seller_id, l.instance_type`;
    const billed = new Map<string, UsageGroup>();
    for (const r of rows) {
      const group = {
        productCode: r.product_code,
        sellerId: r.seller_id ?? '',
        instanceType: r.instance_type,
        seconds: BigInt(r.seconds),
        instances: 0,
      };
      billed.set(usageKey(group), group);
    }
    return billed;
  }

  /** The account's finalised invoice (not a credit note) for a month, if any. */
  async invoiceFor(tx: Tx, accountId: string, periodStart: Date): Promise<Invoice | null> {
    return tx.invoice.findUnique({
      where: { accountId_periodStart_kind: { accountId, periodStart, kind: 'invoice' } },
    });
  }

  /**
   * Writes documents as drafts with their lines, then finalises them (status open): from then on
   * the database refuses any change to them but open → paid / void. Three statements however many
   * documents; numbers are taken in the order given.
   */
  async createFinalized(tx: Prisma.TransactionClient, docs: readonly NewDocument[]): Promise<DocumentRef[]> {
    if (docs.length === 0) return [];
    const finalizedAt = docs[0].finalizedAt;
    if (docs.some((d) => d.finalizedAt.getTime() !== finalizedAt.getTime())) throw new Error('documents finalised together share their time');
    const ids = docs.map((doc) => `${doc.kind === 'invoice' ? 'in' : 'cn'}-${randomBytes(9).toString('hex').slice(0, 17)}`);
    const rows = docs.map((doc, i) => {
      const month = doc.periodStart.toISOString().slice(0, 7).replace('-', '');
      const total = doc.lines.reduce((sum, l) => sum + l.amountMicros, 0n);
      return Prisma.sql`(${ids[i]}, 'IM-' || ${month} || '-' || lpad(nextval('billing.invoice_number_seq')::text, 7, '0'), ${doc.kind},
              ${doc.accountId}, ${doc.periodStart}, ${doc.periodEnd}, 'draft', ${doc.currency}, ${decimal(total)}::numeric,
              ${decimal(doc.feePercentMicros)}::numeric, ${decimal(doc.feeFixedMicros)}::numeric, ${doc.correctsId}, ${doc.finalizedAt})`;
    });
    await tx.$executeRaw`
      INSERT INTO billing.invoice (id, number, kind, account_id, period_start, period_end, status, currency, total,
                                   platform_fee_percent, platform_fee_fixed, corrects_id, updated_at)
      VALUES ${Prisma.join(rows)}`;
    const lines = docs.flatMap((doc, i) =>
      doc.lines.map((l, position) => ({
        invoice_id: ids[i],
        position,
        kind: l.kind,
        description: l.description.slice(0, 200),
        service_period: l.servicePeriod.toISOString(),
        product_code: l.productCode,
        seller_id: l.sellerId,
        subscription_id: l.subscriptionId,
        instance_type: l.instanceType,
        seconds: l.seconds === null ? null : l.seconds.toString(),
        unit_price: l.unitPriceMicros === null ? null : decimal(l.unitPriceMicros),
        base_amount: decimal(l.baseMicros),
        seller_amount: decimal(l.sellerMicros),
        amount: decimal(l.amountMicros),
      })),
    );
    // Decimals and seconds travel as JSON strings, so nothing passes through a float.
    await tx.$executeRaw`
      INSERT INTO billing.invoice_line (id, invoice_id, position, kind, description, service_period, product_code, seller_id,
                                        subscription_id, instance_type, seconds, unit_price, base_amount, seller_amount, amount)
      SELECT gen_random_uuid(), invoice_id, position, kind, description, service_period, product_code, seller_id,
             subscription_id, instance_type, seconds, unit_price, base_amount, seller_amount, amount
        FROM jsonb_to_recordset(${JSON.stringify(lines)}::jsonb) AS l(invoice_id text, position int, kind text, description text,
             service_period timestamptz, product_code text, seller_id text, subscription_id text, instance_type text, seconds bigint,
             unit_price numeric, base_amount numeric, seller_amount numeric, amount numeric)`;
    const finalized = await tx.$queryRaw<DocumentRef[]>`
      UPDATE billing.invoice SET status = 'open', finalized_at = ${finalizedAt}, updated_at = CURRENT_TIMESTAMP
       WHERE id = ANY(${ids}::text[]) RETURNING id, kind`;
    const byId = new Map(finalized.map((f) => [f.id, f]));
    return ids.map((id) => byId.get(id)!);
  }

  findById(id: string): Promise<InvoiceWithLines | null> {
    return this.prisma.invoice.findUnique({
      where: { id },
      include: { lines: { orderBy: { position: 'asc' } } },
    });
  }

  listByAccount(accountId: string, take: number, cursor?: InvoiceCursor): Promise<Invoice[]> {
    return this.prisma.invoice.findMany({
      where: {
        accountId,
        status: { not: 'draft' },
        ...(cursor && {
          OR: [
            { createdAt: { lt: cursor.createdAt } },
            { createdAt: cursor.createdAt, id: { lt: cursor.id } },
          ],
        }),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take,
    });
  }

  /** A seller's lines on the month's finalised documents, summed per document and product. */
  async sellerLines(sellerId: string, periodStart: Date) {
    const rows = await this.prisma.$queryRaw<
      {
        invoice_id: string;
        kind: string;
        account_id: string;
        platform_fee_percent: Prisma.Decimal;
        platform_fee_fixed: Prisma.Decimal;
        product_code: string;
        markup: Prisma.Decimal;
        monthly: Prisma.Decimal;
        sign_up: Prisma.Decimal;
        base: Prisma.Decimal;
      }[]
    >`
      SELECT i.id AS invoice_id, i.kind, i.account_id, i.platform_fee_percent, i.platform_fee_fixed, l.product_code,
             coalesce(sum(l.seller_amount) FILTER (WHERE l.kind IN ('usage', 'usage_adjustment')), 0) AS markup,
             coalesce(sum(l.seller_amount) FILTER (WHERE l.kind = 'monthly_fee'), 0) AS monthly,
             coalesce(sum(l.seller_amount) FILTER (WHERE l.kind = 'sign_up_fee'), 0) AS sign_up,
             coalesce(sum(l.base_amount), 0) AS base
        FROM billing.invoice_line l JOIN billing.invoice i ON i.id = l.invoice_id
       WHERE l.seller_id = ${sellerId} AND i.period_start = ${periodStart} AND i.status IN ('open', 'paid')
       GROUP BY i.id, i.kind, i.account_id, i.platform_fee_percent, i.platform_fee_fixed, l.product_code
       ORDER BY l.product_code, i.id`;
    return rows.map((r) => ({
      invoiceId: r.invoice_id,
      kind: r.kind as InvoiceKind,
      accountId: r.account_id,
      feePercentMicros: micros(r.platform_fee_percent),
      feeFixedMicros: micros(r.platform_fee_fixed),
      productCode: r.product_code,
      markup: micros(r.markup),
      monthly: micros(r.monthly),
      signUp: micros(r.sign_up),
      base: micros(r.base),
    }));
  }
}
