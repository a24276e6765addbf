import type { InvoiceLineKind } from '@imagemart/contracts';
import { markupMicros } from '../pricing/pricing.calculator.js';
import type { StoredProductPricing } from '../pricing/pricing.repository.js';
import { usageKey, type UsageGroup } from '../usage/usage.repository.js';

/**
 * The invoice arithmetic, in bigint micro-units (docs/pricing.md, "Invoices"). Each line is
 * rounded once, to the micro-unit, half up (away from zero on a credit note); a document's total
 * is the exact sum of its lines.
 */

const SECONDS_PER_HOUR = 3600n;

/** a / b rounded half up (half away from zero for a negative a); b > 0. */
export function divRoundHalfUp(a: bigint, b: bigint): bigint {
  if (a < 0n) return -divRoundHalfUp(-a, b);
  return (a * 2n + b) / (2n * b);
}

export interface Prices {
  /** Base rate per instance-hour, by instance type. */
  baseRates: ReadonlyMap<string, bigint>;
  /** Product prices by product code (a product with no prices has none here). */
  products: ReadonlyMap<string, StoredProductPricing>;
}

/** What a buyer pays per instance-hour of a product (null: a free image) on an instance type, split. */
export function hourlyRate(
  prices: Prices,
  productCode: string | null,
  instanceType: string,
): { base: bigint; markup: bigint } {
  // An instance type no longer offered keeps no base rate: its usage is billed at 0 rather than guessed.
  const base = prices.baseRates.get(instanceType) ?? 0n;
  const markup = productCode
    ? prices.products.get(productCode)?.markups.find((m) => m.instanceType === instanceType)
    : undefined;
  return { base, markup: markup ? markupMicros(markup, base) : 0n };
}

/** seconds × (base + markup) / 3600, rounded; the platform's part is the base alone, rounded, the seller's the rest. */
export function usageCharge(
  seconds: bigint,
  rate: { base: bigint; markup: bigint },
): { base: bigint; seller: bigint; amount: bigint } {
  const amount = divRoundHalfUp(seconds * (rate.base + rate.markup), SECONDS_PER_HOUR);
  const base = divRoundHalfUp(seconds * rate.base, SECONDS_PER_HOUR);
  return { base, seller: amount - base, amount };
}

/** The monthly fee for `period` of a subscription started at `startedAt`: prorated in its first month. */
export function monthlyFeeFor(feeMicros: bigint, startedAt: Date, period: Period): bigint {
  if (startedAt <= period.start) return feeMicros;
  const monthMs = BigInt(period.end.getTime() - period.start.getTime());
  const usedMs = BigInt(period.end.getTime() - startedAt.getTime());
  return divRoundHalfUp(feeMicros * usedMs, monthMs);
}

export interface Period {
  start: Date;
  end: Date;
}

export interface LineDraft {
  kind: InvoiceLineKind;
  description: string;
  servicePeriod: Date;
  productCode: string | null;
  sellerId: string | null;
  subscriptionId: string | null;
  instanceType: string | null;
  seconds: bigint | null;
  unitPriceMicros: bigint | null;
  baseMicros: bigint;
  sellerMicros: bigint;
  amountMicros: bigint;
}

export interface BilledSubscription {
  id: string;
  productCode: string;
  sellerId: string;
  createdAt: Date;
  endedAt: Date | null;
}

/** An earlier month whose usage changed after it was billed. */
export interface PeriodRecount {
  period: Date;
  /** The usage of that month as it stands now. */
  current: UsageGroup[];
  /** Seconds already billed for that month, by usageKey (invoices and credit notes not void). */
  billed: ReadonlyMap<string, UsageGroup>;
}

export interface MonthBill {
  invoiceLines: LineDraft[];
  creditLines: LineDraft[];
}

export const monthLabel = (d: Date): string => d.toISOString().slice(0, 7);

function usageLine(
  kind: InvoiceLineKind,
  servicePeriod: Date,
  group: UsageGroup,
  seconds: bigint,
  prices: Prices,
  description: string,
): LineDraft {
  const rate = hourlyRate(prices, group.productCode, group.instanceType);
  const charge = usageCharge(seconds, rate);
  return {
    kind,
    description,
    servicePeriod,
    productCode: group.productCode,
    sellerId: group.productCode ? group.sellerId : null,
    subscriptionId: null,
    instanceType: group.instanceType,
    seconds,
    unitPriceMicros: rate.base + rate.markup,
    baseMicros: charge.base,
    sellerMicros: charge.seller,
    amountMicros: charge.amount,
  };
}

const what = (g: Pick<UsageGroup, 'productCode' | 'instanceType'>) =>
  `${g.productCode ?? 'free images'}, ${g.instanceType}`;

/**
 * The lines of one buyer's bill for `period`: sign-up fees of subscriptions begun in it, monthly
 * fees of subscriptions live in it, usage per product and instance type, and the corrections of
 * earlier months (more usage: adjustment lines; less: credit note lines).
 */
export function billMonth(input: {
  period: Period;
  prices: Prices;
  subscriptions: readonly BilledSubscription[];
  usage: readonly UsageGroup[];
  recounts: readonly PeriodRecount[];
}): MonthBill {
  const { period, prices } = input;
  const invoiceLines: LineDraft[] = [];
  const creditLines: LineDraft[] = [];
  const subs = [...input.subscriptions]
    .filter((s) => s.createdAt < period.end && (s.endedAt === null || s.endedAt > period.start))
    .sort(
      (a, b) => a.productCode.localeCompare(b.productCode) || a.createdAt.getTime() - b.createdAt.getTime(),
    );

  const feeLine = (
    s: BilledSubscription,
    kind: 'sign_up_fee' | 'monthly_fee',
    amount: bigint,
    description: string,
  ): LineDraft => ({
    kind,
    description,
    servicePeriod: period.start,
    productCode: s.productCode,
    sellerId: s.sellerId,
    subscriptionId: s.id,
    instanceType: null,
    seconds: null,
    unitPriceMicros: null,
    baseMicros: 0n,
    sellerMicros: amount,
    amountMicros: amount,
  });

  for (const s of subs) {
    const pricing = prices.products.get(s.productCode);
    if (pricing && s.createdAt >= period.start && pricing.signUpFeeMicros > 0n) {
      invoiceLines.push(feeLine(s, 'sign_up_fee', pricing.signUpFeeMicros, `Sign-up fee, ${s.productCode}`));
    }
  }
  for (const s of subs) {
    const pricing = prices.products.get(s.productCode);
    if (!pricing || pricing.monthlyFeeMicros === 0n) continue;
    const prorated = s.createdAt > period.start;
    const amount = monthlyFeeFor(pricing.monthlyFeeMicros, s.createdAt, period);
    const description = prorated
      ? `Monthly fee, ${s.productCode}, prorated from ${s.createdAt.toISOString()}`
      : `Monthly fee, ${s.productCode}, ${monthLabel(period.start)}`;
    if (amount > 0n) invoiceLines.push(feeLine(s, 'monthly_fee', amount, description));
  }
  for (const g of input.usage) {
    invoiceLines.push(
      usageLine(
        'usage',
        period.start,
        g,
        g.seconds,
        prices,
        `Usage, ${what(g)}: ${g.seconds} instance-seconds`,
      ),
    );
  }
  for (const recount of [...input.recounts].sort((a, b) => a.period.getTime() - b.period.getTime())) {
    const keys = new Map<string, UsageGroup>();
    for (const g of recount.current) keys.set(usageKey(g), g);
    for (const [key, g] of recount.billed) if (!keys.has(key)) keys.set(key, g);
    const ordered = [...keys.entries()].sort(([a], [b]) => a.localeCompare(b));
    for (const [key, g] of ordered) {
      const now = recount.current.find((c) => usageKey(c) === key)?.seconds ?? 0n;
      const before = recount.billed.get(key)?.seconds ?? 0n;
      const diff = now - before;
      if (diff === 0n) continue;
      const label = `Usage adjustment for ${monthLabel(recount.period)}, ${what(g)}: ${diff} instance-seconds`;
      (diff > 0n ? invoiceLines : creditLines).push(
        usageLine('usage_adjustment', recount.period, g, diff, prices, label),
      );
    }
  }
  return { invoiceLines, creditLines };
}

/** The calendar month (UTC) that starts at `start`. */
export function monthOf(start: Date): Period {
  return { start, end: new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1)) };
}

/** `2026-11` → the period of November 2026. */
export function parseMonth(month: string): Period {
  const [y, m] = month.split('-').map(Number);
  return monthOf(new Date(Date.UTC(y ?? 1970, (m ?? 1) - 1, 1)));
}
