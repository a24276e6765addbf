import {
  MAX_HOURLY,
  decimalToMicros,
  microsToMoney,
  microsToPercent,
  percentOf,
  type Markup,
  type ProductInstanceTypePriceView,
  type QuotedProduct,
} from '@imagemart/contracts';
import type { StoredMarkup, StoredProductPricing } from './pricing.repository.js';

/**
 * The price arithmetic, in bigint micro-units: exact, with the one rounding rule of
 * docs/pricing.md (a percentage is rounded to the micro-unit, half up).
 */

export const MAX_HOURLY_MICROS = decimalToMicros(MAX_HOURLY);

/** The markup per instance-hour in micro-units of currency, for a base rate. */
export function markupMicros(markup: Pick<StoredMarkup, 'kind' | 'valueMicros'>, baseMicros: bigint): bigint {
  return markup.kind === 'amount' ? markup.valueMicros : percentOf(baseMicros, markup.valueMicros);
}

/** What a buyer pays per instance-hour: base + markup. */
export function hourlyMicros(markup: Pick<StoredMarkup, 'kind' | 'valueMicros'>, baseMicros: bigint): bigint {
  return baseMicros + markupMicros(markup, baseMicros);
}

export function markupFromBody(markup: Markup): Pick<StoredMarkup, 'kind' | 'valueMicros'> {
  return 'amount' in markup
    ? { kind: 'amount', valueMicros: decimalToMicros(markup.amount) }
    : { kind: 'percent', valueMicros: decimalToMicros(markup.percent) };
}

export function markupView(markup: Pick<StoredMarkup, 'kind' | 'valueMicros'>): Markup {
  return markup.kind === 'amount' ? { amount: microsToMoney(markup.valueMicros) } : { percent: microsToPercent(markup.valueMicros) };
}

/**
 * A product's prices on the instance types it is offered on: those it has a markup for that still
 * have a base rate, in the order of instance type.
 */
export function productInstanceTypes(pricing: StoredProductPricing, baseRates: ReadonlyMap<string, bigint>): ProductInstanceTypePriceView[] {
  const offered: ProductInstanceTypePriceView[] = [];
  for (const markup of pricing.markups) {
    const base = baseRates.get(markup.instanceType);
    if (base === undefined) continue;
    offered.push({
      instanceType: markup.instanceType,
      baseHourly: microsToMoney(base),
      markup: markupView(markup),
      hourly: microsToMoney(hourlyMicros(markup, base)),
    });
  }
  return offered.sort((a, b) => a.instanceType.localeCompare(b.instanceType));
}

export function quotedProduct(pricing: StoredProductPricing, baseRates: ReadonlyMap<string, bigint>): QuotedProduct {
  return {
    instanceTypes: productInstanceTypes(pricing, baseRates).map(({ instanceType, hourly }) => ({ instanceType, hourly })),
    monthlyFee: microsToMoney(pricing.monthlyFeeMicros),
    signUpFee: microsToMoney(pricing.signUpFeeMicros),
  };
}
