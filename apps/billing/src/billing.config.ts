import { z } from 'zod';
import { baseConfigSchema } from '@imagemart/config';
import { stripeConfigShape } from './stripe/stripe.config.js';

export const billingConfigSchema = baseConfigSchema.extend({
  /**
   * How often each replica looks for subscriptions whose period has ended (to end the cancelled
   * ones and start the next period of the others). Replicas share the work (SKIP LOCKED).
   */
  SUBSCRIPTION_SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).default(60_000),
  /**
   * How often each replica checks whether last month is closed (docs/pricing.md, "Month close");
   * 0 turns the sweep off (months are then closed with billing.invoices.close-month only).
   */
  MONTH_CLOSE_INTERVAL_MS: z.coerce.number().int().min(0).default(60_000),
  /** How long after a month ends its close waits for usage events still on their way. */
  MONTH_CLOSE_GRACE_MS: z.coerce.number().int().min(0).default(3_600_000),
  /** Usage events handled at once by a replica; they share batched writes (docs/pricing.md, "Throughput"). */
  USAGE_EVENT_CONCURRENCY: z.coerce.number().int().min(1).max(5000).default(512),
  /** Stripe as the payment provider, when STRIPE_SECRET_KEY is set (docs/stripe.md). */
  ...stripeConfigShape,
});
export type BillingConfig = z.infer<typeof billingConfigSchema>;
