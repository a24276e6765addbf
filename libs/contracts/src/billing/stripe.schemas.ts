import { z } from 'zod';

/**
 * `billing.stripe.event`: a webhook event whose Stripe signature the gateway checked. The event is
 * passed as Stripe sent it; billing reads the fields it needs from it.
 */
export const stripeEventRequestSchema = z.object({
  event: z.looseObject({
    id: z.string().min(1).max(255),
    type: z.string().min(1).max(128),
    /** Unix seconds. */
    created: z.number().int().min(0),
    data: z.looseObject({ object: z.record(z.string(), z.unknown()) }),
  }),
});
export type StripeEventRequest = z.infer<typeof stripeEventRequestSchema>;

/**
 * What billing did with the event: `applied` (it changed our records), `stale` (an older state
 * than the one held, or an event for something we do not know), `ignored` (a type billing does not
 * handle), `duplicate` (this event id was handled before: nothing changed).
 */
export interface StripeEventResult {
  eventId: string;
  outcome: 'applied' | 'stale' | 'ignored' | 'duplicate';
}

/** Jobs of `QueueName.stripeSync`. */
export const StripeSyncJobName = {
  /** Bring one subscription (and its customer, product and prices) to Stripe. */
  subscription: 'stripe.subscription.sync',
} as const;

export interface StripeSyncSubscriptionJob {
  subscriptionId: string;
  /** The subscription's revision when the job was written (for the logs and the job id). */
  revision: number;
}
