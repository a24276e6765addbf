import { z } from 'zod';
import { accountIdSchema, callerSchema } from '../permission/permission.schemas.js';
import { monthSchema } from './invoices.schemas.js';

/** `GET /v1/revenue?month=YYYY-MM`: a seller's own; an admin may name a seller. */
export const revenueQuerySchema = z.strictObject({
  month: monthSchema,
  sellerId: accountIdSchema.optional(),
});
export const revenueGetRequestSchema = z.strictObject({
  caller: callerSchema,
  month: monthSchema,
  sellerId: accountIdSchema.optional(),
});
export type RevenueGetRequest = z.infer<typeof revenueGetRequestSchema>;

export interface RevenueAmounts {
  /** markup + monthlyFees + signUpFees: the seller's revenue. */
  gross: string;
  markup: string;
  monthlyFees: string;
  signUpFees: string;
  /** The base-rate part of the usage of the seller's products: the platform keeps it. */
  baseUsageCost: string;
  /** Buyers billed for the seller's products. */
  buyers: number;
}

export interface RevenueProductView extends RevenueAmounts {
  productCode: string;
}

/** A seller's revenue of one month, from the finalised invoices and credit notes of that month. */
export interface RevenueView extends RevenueAmounts {
  sellerId: string;
  month: string;
  currency: 'USD';
  /** Percent of gross (per bill, rounded) + the fixed fee per buyer per bill. */
  platformFee: string;
  /** gross − platformFee. */
  net: string;
  products: RevenueProductView[];
}
