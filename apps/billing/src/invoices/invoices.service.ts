import { Inject, Injectable, Logger } from '@nestjs/common';
import { PrismaClient } from '@imagemart/database';
import {
  ErrorCode,
  microsToMoney,
  type Caller,
  type CloseMonthResult,
  type InvoiceKind,
  type InvoiceLineKind,
  type InvoiceStatus,
  type InvoiceSummaryView,
  type InvoiceView,
  type Page,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { PricingRepository } from '../pricing/pricing.repository.js';
import type { StoredProductPricing } from '../pricing/pricing.repository.js';
import { StripeSyncQueue } from '../stripe/stripe-sync.queue.js';
import { UsageRepository } from '../usage/usage.repository.js';
import { BILLING_PROVIDER, type BillingProvider } from './billing-provider.js';
import {
  billMonth,
  monthLabel,
  monthOf,
  parseMonth,
  type LineDraft,
  type Period,
  type PeriodRecount,
  type Prices,
} from './invoice.calculator.js';

type LoadedPrices = Prices & { products: Map<string, StoredProductPricing> };
import {
  InvoicesRepository,
  micros,
  type DocumentRef,
  type Invoice,
  type InvoiceCursor,
  type NewDocument,
  type InvoiceWithLines,
} from './invoices.repository.js';

/** Batches of buyers closed at once by one replica (each batch in its own transaction)... */
const CLOSE_CONCURRENCY = 2;
/** ...of this many buyers. */
const CLOSE_BATCH = 100;
/**
 * Records changed this long before a buyer's last close are looked at again: a write whose
 * timestamp was taken before that close but committed after it is not missed.
 */
const CHANGE_MARGIN_MS = 5 * 60_000;

const notFound = (id: string) =>
  new DomainException(ErrorCode.InvalidInvoiceIDNotFound, `The invoice ID '${id}' does not exist`);

const encodeCursor = (i: Invoice) =>
  Buffer.from(`${i.createdAt.toISOString()}|${i.id}`).toString('base64url');

function decodeCursor(token: string): InvoiceCursor {
  const [iso, id] = Buffer.from(token, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (!id || !/^(in|cn)-[0-9a-f]{17}$/.test(id) || Number.isNaN(createdAt.getTime())) {
    throw new DomainException(ErrorCode.InvalidPaginationToken, 'The page cursor is not valid.', [
      { path: 'cursor', message: 'not a cursor this API returned' },
    ]);
  }
  return { createdAt, id };
}

export function toInvoiceSummary(i: Invoice): InvoiceSummaryView {
  return {
    invoiceId: i.id,
    number: i.number,
    kind: i.kind as InvoiceKind,
    accountId: i.accountId,
    period: monthLabel(i.periodStart),
    status: i.status as InvoiceStatus,
    currency: 'USD',
    total: microsToMoney(micros(i.total)),
    correctsInvoiceId: i.correctsId,
    finalizedAt: i.finalizedAt?.toISOString() ?? null,
    paidAt: i.paidAt?.toISOString() ?? null,
    voidedAt: i.voidedAt?.toISOString() ?? null,
    createdAt: i.createdAt.toISOString(),
  };
}

export function toInvoiceView(i: InvoiceWithLines): InvoiceView {
  return {
    ...toInvoiceSummary(i),
    lines: i.lines.map((l) => ({
      kind: l.kind as InvoiceLineKind,
      description: l.description,
      servicePeriod: monthLabel(l.servicePeriod),
      productCode: l.productCode,
      instanceType: l.instanceType,
      subscriptionId: l.subscriptionId,
      seconds: l.seconds === null ? null : Number(l.seconds),
      unitPrice: l.unitPrice === null ? null : microsToMoney(micros(l.unitPrice)),
      amount: microsToMoney(micros(l.amount)),
    })),
  };
}

/** The account a caller may read: their own; an admin names any (or their own by default). */
export function readableAccount(caller: Caller, accountId: string | undefined): string {
  if (!accountId || accountId === caller.accountId) return caller.accountId;
  if (caller.roles.includes('admin')) return accountId;
  throw new DomainException(
    ErrorCode.UnauthorizedOperation,
    "Only an admin may read another account's billing.",
  );
}

/**
 * Month close and invoices (docs/pricing.md, "Invoices"). A month is closed per buyer: each buyer
 * of the month is put on a work list once, then taken with SKIP LOCKED in its own transaction,
 * billed and marked closed, so replicas share a close and a buyer is never billed twice (the
 * unique (account, month, kind) of invoices backs this).
 */
@Injectable()
export class InvoicesService {
  private readonly logger = new Logger(InvoicesService.name);

  constructor(
    private readonly prisma: PrismaClient,
    private readonly invoices: InvoicesRepository,
    private readonly usage: UsageRepository,
    private readonly pricing: PricingRepository,
    @Inject(BILLING_PROVIDER) private readonly provider: BillingProvider,
    private readonly stripeSync: StripeSyncQueue,
  ) {}

  /** Closes `month` (`YYYY-MM`) for every buyer not yet closed. The month must have ended. */
  async closeMonth(month: string, now = new Date()): Promise<CloseMonthResult> {
    const period = parseMonth(month);
    if (now < period.end) {
      throw new DomainException(
        ErrorCode.IncorrectState,
        `The month ${month} has not ended yet, so it cannot be closed.`,
      );
    }
    await this.invoices.enlistBuyers(period.start, period.end);
    const prices = await this.loadPrices();
    const fee = (await this.pricing.platformFee()) ?? { percentMicros: 0n, fixedPerBuyerMicros: 0n };
    const result: CloseMonthResult = { month, buyers: 0, invoices: 0, creditNotes: 0 };

    const worker = async () => {
      for (;;) {
        const batch = await this.closeBuyers(period, prices, fee, now);
        if (!batch) return;
        result.buyers += batch.buyers;
        for (const doc of batch.documents) {
          if (doc.kind === 'invoice') result.invoices++;
          else result.creditNotes++;
          await this.handOn(doc.id);
        }
      }
    };
    await Promise.all(Array.from({ length: CLOSE_CONCURRENCY }, worker));
    if ((await this.invoices.pendingBuyers(period.start)) === 0)
      await this.invoices.completeRun(period.start, now);
    return result;
  }

  /** Whether a month's close has run to the end (the sweep skips it then). */
  closed(month: string): Promise<boolean> {
    return this.invoices.runCompleted(parseMonth(month).start);
  }

  async list(
    caller: Caller,
    limit: number,
    cursor?: string,
    accountId?: string,
  ): Promise<Page<InvoiceSummaryView>> {
    const account = readableAccount(caller, accountId);
    const rows = await this.invoices.listByAccount(
      account,
      limit + 1,
      cursor ? decodeCursor(cursor) : undefined,
    );
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map(toInvoiceSummary),
      nextCursor: rows.length > limit && last ? encodeCursor(last) : null,
    };
  }

  /** The caller's own invoice (any, for an admin); another account's answers as one that does not exist. */
  async get(caller: Caller, id: string): Promise<InvoiceView> {
    const row = await this.invoices.findById(id);
    if (
      !row ||
      row.status === 'draft' ||
      (row.accountId !== caller.accountId && !caller.roles.includes('admin'))
    )
      throw notFound(id);
    return toInvoiceView(row);
  }

  /**
   * Bills up to CLOSE_BATCH buyers of the period in one transaction, reading what they need with
   * one statement per kind (subscriptions, usage, changes, earlier closes) and writing their
   * documents with three; null when none is left.
   */
  private async closeBuyers(
    period: Period,
    prices: LoadedPrices,
    fee: { percentMicros: bigint; fixedPerBuyerMicros: bigint },
    now: Date,
  ): Promise<{ buyers: number; documents: DocumentRef[] } | null> {
    return this.prisma.$transaction(
      async (tx) => {
        const accounts = await this.invoices.claimBuyers(tx, period.start, CLOSE_BATCH);
        if (accounts.length === 0) return null;
        const lastClosed = await this.invoices.lastClosedAt(tx, accounts, period.start);
        const subscriptions = await this.invoices.subscriptionsIn(tx, accounts, period.start, period.end);
        const usage = await this.usage.groupsOf(accounts, period.start, period.end, period.end, tx);
        const since = new Map(
          accounts.map((a) => {
            const closed = lastClosed.get(a);
            return [a, closed ? new Date(closed.getTime() - CHANGE_MARGIN_MS) : null] as const;
          }),
        );
        const changed = await this.usage.changedPeriodsOf(since, period.start, tx);

        const inputs = [];
        for (const accountId of accounts) {
          const recounts: PeriodRecount[] = [];
          for (const start of changed.get(accountId) ?? []) {
            const earlier = monthOf(start);
            recounts.push({
              period: start,
              current: await this.usage.groups(accountId, earlier.start, earlier.end, earlier.end, tx),
              billed: await this.invoices.billedUsage(tx, accountId, start),
            });
          }
          inputs.push({ accountId, subscriptions: subscriptions.get(accountId) ?? [], usage: usage.get(accountId) ?? [], recounts });
        }
        await this.ensureProducts(
          prices,
          inputs.flatMap((b) => [
            ...b.subscriptions.map((s) => s.productCode),
            ...b.usage.map((g) => g.productCode),
            ...b.recounts.flatMap((r) => [...r.current, ...r.billed.values()].map((g) => g.productCode)),
          ]),
        );

        const drafts: NewDocument[] = [];
        for (const { accountId, subscriptions: subs, usage: used, recounts } of inputs) {
          const bill = billMonth({ period, prices, subscriptions: subs, usage: used, recounts });
          const base = {
            accountId,
            periodStart: period.start,
            periodEnd: period.end,
            currency: 'USD',
            feePercentMicros: fee.percentMicros,
            feeFixedMicros: fee.fixedPerBuyerMicros,
            finalizedAt: now,
          };
          if (bill.invoiceLines.length > 0) drafts.push({ ...base, kind: 'invoice', correctsId: null, lines: bill.invoiceLines });
          if (bill.creditLines.length > 0) {
            const corrected = await this.invoices.invoiceFor(tx, accountId, latestPeriod(bill.creditLines));
            drafts.push({ ...base, kind: 'credit_note', correctsId: corrected?.id ?? null, lines: bill.creditLines });
          }
        }
        const documents = await this.invoices.createFinalized(tx, drafts);
        // With Stripe: this month's paid usage, per instance, goes to Stripe as meter events (an
        // outbox job, so it is sent if and only if this close commits). Read after the usage lines:
        // a usage write committed in between reaches Stripe now and the invoice as next month's
        // adjustment, so each bills it once.
        for (const accountId of accounts) {
          await this.stripeSync.usageClosed(tx, { accountId, month: monthLabel(period.start), start: period.start, end: period.end });
        }
        await this.invoices.markClosed(tx, period.start, accounts);
        return { buyers: accounts.length, documents };
      },
      { timeout: 60_000 },
    );
  }

  private async loadPrices(): Promise<LoadedPrices> {
    const rates = await this.pricing.baseRates();
    return { baseRates: new Map(rates.map((r) => [r.instanceType, r.hourlyMicros])), products: new Map() };
  }

  /** Loads the prices of products not seen yet in this close. */
  private async ensureProducts(prices: LoadedPrices, codes: (string | null)[]): Promise<void> {
    const missing = [...new Set(codes.filter((c): c is string => c !== null && !prices.products.has(c)))];
    if (missing.length === 0) return;
    for (const p of await this.pricing.productPricing(missing)) prices.products.set(p.productCode, p);
  }

  private async handOn(id: string): Promise<void> {
    if (this.provider.name === 'ledger') return; // the ledger is the invoice table itself
    try {
      const row = await this.invoices.findById(id);
      if (row) await this.provider.invoiceFinalized(toInvoiceView(row));
    } catch (err) {
      this.logger.warn(
        `Billing provider ${this.provider.name} did not take invoice ${id}: ${(err as Error).message}`,
      );
    }
  }
}

function latestPeriod(lines: LineDraft[]): Date {
  return lines.reduce(
    (latest, l) => (l.servicePeriod > latest ? l.servicePeriod : latest),
    lines[0].servicePeriod,
  );
}
