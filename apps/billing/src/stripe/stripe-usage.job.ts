import { z } from 'zod';
import { MINIMUM_BILLED_SECONDS, accountIdSchema, instanceIdSchema } from '@imagemart/contracts';
import type { Prisma } from '@imagemart/database';

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

export interface InstanceUsage {
  instanceId: string;
  productCode: string;
  instanceType: string;
  seconds: bigint;
}

/**
 * The billed seconds of each instance of a paid product that one account ran in [from, to), by
 * the billing rule of `UsageRepository.groups` (docs/pricing.md): timestamps to the whole second,
 * the seconds of a run that fall in the period, a run still going counted up to `to`, and a run
 * shorter than the minimum topped up in the month it stopped. One row per instance, so the rows of
 * a product and instance type add up to that usage line of the invoice. Free images are left out:
 * Stripe bills none of them.
 */
export async function paidUsagePerInstance(
  tx: Prisma.TransactionClient,
  accountId: string,
  from: Date,
  to: Date,
): Promise<InstanceUsage[]> {
  const rows = await tx.$queryRaw<
    { instance_id: string; product_code: string; instance_type: string; seconds: bigint }[]
  >`
    WITH runs AS (
      SELECT instance_id, product_code, instance_type,
             date_trunc('second', running_at) AS started,
             date_trunc('second', stopped_at) AS stopped
        FROM billing.usage_record
       WHERE account_id = ${accountId} AND product_code IS NOT NULL
         AND running_at IS NOT NULL AND running_at < ${to}
         AND (stopped_at IS NULL OR stopped_at >= ${from})
    ), billed AS (
      SELECT instance_id, product_code, instance_type,
             greatest(0, extract(epoch FROM least(coalesce(stopped, ${to}), ${to}) - greatest(started, ${from})))::bigint
             + CASE WHEN stopped >= ${from} AND stopped < ${to}
                    THEN greatest(0, ${MINIMUM_BILLED_SECONDS} - extract(epoch FROM stopped - started))::bigint
                    ELSE 0 END AS seconds
        FROM runs
    )
    SELECT instance_id, product_code, instance_type, seconds
      FROM billed WHERE seconds > 0
     ORDER BY instance_id`;
  return rows.map((r) => ({
    instanceId: r.instance_id,
    productCode: r.product_code,
    instanceType: r.instance_type,
    seconds: BigInt(r.seconds),
  }));
}
