import { z } from 'zod';
import { baseConfigSchema } from '@imagemart/config';

export const billingConfigSchema = baseConfigSchema.extend({
  /**
   * How often each replica looks for subscriptions whose period has ended (to end the cancelled
   * ones and start the next period of the others). Replicas share the work (SKIP LOCKED).
   */
  SUBSCRIPTION_SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).default(60_000),
});
export type BillingConfig = z.infer<typeof billingConfigSchema>;
