import { z } from 'zod';
import { productCodeSchema, subscriptionStatusSchema, type SubscriptionStatus } from '../events/domain-events.js';
import { accountIdSchema, callerSchema } from '../permission/permission.schemas.js';
import { DECIMAL_PATTERN, decimalToMicros } from './money.js';

/** ISO 4217 codes the platform bills in. Only USD for now; a request in another currency is refused. */
export const CURRENCIES = ['USD'] as const;
export type Currency = (typeof CURRENCIES)[number];

export const currencySchema = z
  .string()
  .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 currency code such as USD')
  .refine((c): c is Currency => (CURRENCIES as readonly string[]).includes(c), 'only USD is accepted for now')
  .transform((c) => c as Currency);

/** An EC2-style instance type name: family and size, `t3.micro`, `c5.xlarge`. */
export const instanceTypeSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,15}\.[a-z0-9]{1,15}$/, 'must be an instance type such as t3.micro');

export const subscriptionIdSchema = z.string().regex(/^sub-[0-9a-f]{17}$/, 'must be sub- followed by 17 lowercase hex digits');

/**
 * A decimal string (never a JSON number), non-negative, at most 6 decimals, at most `max`.
 * `what` names the unit in messages.
 */
function decimalString(max: string, what: string) {
  const maxMicros = decimalToMicros(max);
  return z
    .string({ error: `must be a decimal string such as "0.0116", not a JSON number` })
    .refine((v) => !v.trim().startsWith('-'), `must not be negative`)
    .refine(
      (v) => v.trim().startsWith('-') || DECIMAL_PATTERN.test(v),
      'must be a decimal string with at most 6 decimal places, such as "0.0116"',
    )
    .refine((v) => !DECIMAL_PATTERN.test(v) || decimalToMicros(v) <= maxMicros, `must be at most ${max} ${what}`);
}

/** Most per instance-hour a price may be; more is surely a mistake. */
export const MAX_HOURLY = '1000';
/** Most a monthly (or sign-up) fee may be. */
export const MAX_MONTHLY = '100000';

export const hourlyAmountSchema = decimalString(MAX_HOURLY, 'per instance-hour');
export const feeAmountSchema = decimalString(MAX_MONTHLY, '');

const uniqueInstanceTypes = <T extends { instanceType: string }>(items: T[]) =>
  new Set(items.map((i) => i.instanceType)).size === items.length;

// Platform pricing (admin).

export const platformFeeSchema = z.strictObject({
  /** Percent of seller revenue, 0 to 100. */
  percent: decimalString('100', 'percent'),
  /** A fixed amount per buyer per bill. */
  fixedPerBuyer: decimalString(MAX_HOURLY, ''),
});
export type PlatformFeeBody = z.infer<typeof platformFeeSchema>;

/** PUT /v1/pricing/instance-types: the full list of base rates (types left out are no longer offered). */
export const platformPricingBodySchema = z.strictObject({
  currency: currencySchema,
  instanceTypes: z
    .array(z.strictObject({ instanceType: instanceTypeSchema, hourly: hourlyAmountSchema }))
    .min(1)
    .max(100)
    .refine(uniqueInstanceTypes, 'each instance type may appear once'),
  platformFee: platformFeeSchema.optional(),
});
export type PlatformPricingBody = z.infer<typeof platformPricingBodySchema>;

export const platformPricingGetRequestSchema = z.strictObject({});
export const platformPricingPutRequestSchema = z.strictObject({ caller: callerSchema, pricing: platformPricingBodySchema });
export type PlatformPricingPutRequest = z.infer<typeof platformPricingPutRequestSchema>;

// Product pricing (the seller who owns the product code).

/** A markup per instance-hour: an amount of money, or a percentage of the base rate. */
export const markupSchema = z.union([
  z.strictObject({ amount: hourlyAmountSchema }),
  z.strictObject({ percent: decimalString('1000', 'percent') }),
]);
export type Markup = z.infer<typeof markupSchema>;

/** PUT /v1/products/{code}/pricing: the product is offered on exactly the instance types listed. */
export const productPricingBodySchema = z.strictObject({
  currency: currencySchema,
  instanceTypes: z
    .array(z.strictObject({ instanceType: instanceTypeSchema, markup: markupSchema }))
    .min(1)
    .max(100)
    .refine(uniqueInstanceTypes, 'each instance type may appear once'),
  monthlyFee: feeAmountSchema.default('0'),
  signUpFee: feeAmountSchema.default('0'),
});
export type ProductPricingBody = z.infer<typeof productPricingBodySchema>;

export const productPricingGetRequestSchema = z.strictObject({ productCode: productCodeSchema });
export type ProductPricingGetRequest = z.infer<typeof productPricingGetRequestSchema>;

export const productPricingPutRequestSchema = z.strictObject({
  caller: callerSchema,
  productCode: productCodeSchema,
  pricing: productPricingBodySchema,
});
export type ProductPricingPutRequest = z.infer<typeof productPricingPutRequestSchema>;

// Subscriptions (buyers).

export const createSubscriptionBodySchema = z.strictObject({ productCode: productCodeSchema });
export type CreateSubscriptionBody = z.infer<typeof createSubscriptionBodySchema>;

export const subscriptionCreateRequestSchema = z.strictObject({ caller: callerSchema, productCode: productCodeSchema });
export type SubscriptionCreateRequest = z.infer<typeof subscriptionCreateRequestSchema>;

export const listSubscriptionsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(200).optional(),
  status: subscriptionStatusSchema.optional(),
});
export const subscriptionListRequestSchema = z.strictObject({
  caller: callerSchema,
  limit: z.number().int().min(1).max(100),
  cursor: z.string().max(200).optional(),
  status: subscriptionStatusSchema.optional(),
});
export type SubscriptionListRequest = z.infer<typeof subscriptionListRequestSchema>;

export const subscriptionGetRequestSchema = z.strictObject({ caller: callerSchema, subscriptionId: subscriptionIdSchema });
export type SubscriptionGetRequest = z.infer<typeof subscriptionGetRequestSchema>;

export const subscriptionCancelRequestSchema = subscriptionGetRequestSchema;
export type SubscriptionCancelRequest = SubscriptionGetRequest;

// For other services.

/** `billing.entitlement.check`: may this account launch an image carrying these product codes? */
export const entitlementCheckRequestSchema = z.strictObject({
  accountId: accountIdSchema,
  productCodes: z.array(productCodeSchema).max(100),
});
export type EntitlementCheckRequest = z.infer<typeof entitlementCheckRequestSchema>;

/** `billing.pricing.quote`: base rates, and the prices of these products. */
export const pricingQuoteRequestSchema = z.strictObject({ productCodes: z.array(productCodeSchema).max(100) });
export type PricingQuoteRequest = z.infer<typeof pricingQuoteRequestSchema>;

// Responses. Every amount is a decimal string in `currency`.

export interface PlatformPricingView {
  currency: Currency;
  /** Sorted by instance type. */
  instanceTypes: { instanceType: string; hourly: string }[];
  platformFee: { percent: string; fixedPerBuyer: string };
  updatedAt: string;
}

export interface ProductInstanceTypePriceView {
  instanceType: string;
  /** The platform's base rate. */
  baseHourly: string;
  /** The seller's markup, as the seller set it. */
  markup: Markup;
  /** What the buyer pays per instance-hour: base + markup. */
  hourly: string;
}

export interface ProductPricingView {
  productCode: string;
  sellerId: string;
  currency: Currency;
  /** The instance types the product is offered on (those with a base rate), sorted. */
  instanceTypes: ProductInstanceTypePriceView[];
  monthlyFee: string;
  signUpFee: string;
  revision: number;
  updatedAt: string;
}

export interface SubscriptionView {
  id: string;
  accountId: string;
  productCode: string;
  status: SubscriptionStatus;
  /** Whether it lets its account launch the product now (see docs/pricing.md). */
  entitled: boolean;
  /** Cancelled by the buyer: it stays active until currentPeriodEnd, then becomes canceled. */
  cancelAtPeriodEnd: boolean;
  currentPeriodStart: string;
  currentPeriodEnd: string;
  canceledAt: string | null;
  endedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface EntitlementCheckResponse {
  /** True when every product code has a subscription that entitles the account (true for none). */
  entitled: boolean;
  /** When entitled: the subscription to the first product code; otherwise null. */
  subscriptionId: string | null;
}

export interface QuotedProduct {
  instanceTypes: { instanceType: string; hourly: string }[];
  monthlyFee: string;
  signUpFee: string;
}

export interface PricingQuoteResponse {
  currency: 'USD';
  instanceTypes: { instanceType: string; baseHourly: string }[];
  /** Every product code asked about; null for one that has no pricing yet. */
  products: Record<string, QuotedProduct | null>;
}
