import { z } from 'zod';
import { accountIdSchema, callerSchema } from '../permission/permission.schemas.js';

/**
 * Usage metering (docs/pricing.md, "Usage metering"): instance time from catalog.instance.changed,
 * metered per second, with a minimum of 60 seconds per run.
 */

/** The shortest run billed: a run shorter than this is billed as this many seconds. */
export const MINIMUM_BILLED_SECONDS = 60;

/** `GET /v1/usage`: an admin may name another account. */
export const usageQuerySchema = z.strictObject({ accountId: accountIdSchema.optional() });
export type UsageQuery = z.infer<typeof usageQuerySchema>;

export const usageGetRequestSchema = z.strictObject({
  caller: callerSchema,
  accountId: accountIdSchema.optional(),
});
export type UsageGetRequest = z.infer<typeof usageGetRequestSchema>;

/** One product and instance type of the usage so far. */
export interface UsageLineView {
  /** Null: free images, billed at the base rate. */
  productCode: string | null;
  instanceType: string;
  /** Instances that ran in the period. */
  instances: number;
  /** Billed instance-seconds so far. */
  seconds: number;
  /** Per instance-hour: base + markup. */
  hourly: string;
  /** seconds × hourly / 3600, rounded to the micro-unit, half up. */
  amount: string;
}

/** The usage of the current calendar month so far (instances still running are counted to `asOf`). */
export interface UsageView {
  accountId: string;
  currency: 'USD';
  periodStart: string;
  periodEnd: string;
  asOf: string;
  lines: UsageLineView[];
  total: string;
}
