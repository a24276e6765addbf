import { z } from 'zod';
import { accountIdSchema, instanceIdSchema } from '@imagemart/contracts';

/**
 * The job of `QueueName.stripeSync` that sends a closed month's usage of one buyer to Stripe as
 * meter events (docs/stripe.md, "Usage"). The month close writes it to the billing outbox in the
 * buyer's closing transaction, with the seconds it billed, so the job exists if and only if the
 * close committed and a retry sends the very same values.
 */
export const STRIPE_USAGE_JOB = 'stripe.usage.report';

/** Instances per job: a large buyer's month is split so a retry re-sends little. */
export const USAGE_JOB_INSTANCES = 100;

export const stripeUsageJobSchema = z.object({
  accountId: accountIdSchema,
  /** `YYYY-MM`, the month closed. */
  month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/),
  /** Epoch seconds inside that month: the timestamp of every meter event of the job. */
  timestamp: z.number().int().min(0),
  usage: z
    .array(
      z.object({
        instanceId: instanceIdSchema,
        productCode: z.string().min(1),
        instanceType: z.string().min(1),
        /** Billed seconds, a whole number as a string. */
        seconds: z.string().regex(/^[1-9]\d*$/),
      }),
    )
    .min(1)
    .max(USAGE_JOB_INSTANCES),
});

export type StripeUsageJob = z.infer<typeof stripeUsageJobSchema>;

/** The meter event identifier of an instance's usage in a month: Stripe counts it once. */
export const usageIdentifier = (instanceId: string, month: string): string => `${instanceId}:${month}`;
