import type { SubscriptionStatus } from '@imagemart/contracts';

/**
 * Whether a subscription in this status lets its account launch the product (docs/pricing.md):
 * active yes; past_due yes, the grace period while a failed payment is retried (the billing run
 * moves it to canceled when retries run out, which ends access); canceled no. A subscription
 * cancelled at period end is active, so entitled, until that end.
 */
export function isEntitled(status: SubscriptionStatus): boolean {
  return status === 'active' || status === 'past_due';
}

/** The statuses that entitle, for queries. */
export const ENTITLING_STATUSES: SubscriptionStatus[] = ['active', 'past_due'];
