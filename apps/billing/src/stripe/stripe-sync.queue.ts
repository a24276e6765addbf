import { Inject, Injectable } from '@nestjs/common';
import { appendOutboxEvent, type OutboxWriter } from '@imagemart/database';
import { QueueName, StripeSyncJobName, type StripeSyncSubscriptionJob } from '@imagemart/contracts';
import { requestContext } from '@imagemart/observability';
import { STRIPE_CLIENT } from './stripe.client.js';
import type Stripe from 'stripe';

/**
 * Asks for a Stripe sync in the transaction that changed the record: the job is written to the
 * billing outbox with the change, so it exists if and only if the change committed, and the relay
 * delivers it to `QueueName.stripeSync`. Nothing is written when Stripe is not configured.
 */
@Injectable()
export class StripeSyncQueue {
  constructor(@Inject(STRIPE_CLIENT) private readonly stripe: Stripe | null) {}

  get enabled(): boolean {
    return this.stripe !== null;
  }

  async subscriptionChanged(tx: OutboxWriter, subscription: { id: string; revision: number }): Promise<void> {
    if (!this.stripe) return;
    const job: StripeSyncSubscriptionJob = {
      subscriptionId: subscription.id,
      revision: subscription.revision,
    };
    await appendOutboxEvent(tx, 'billing', {
      type: StripeSyncJobName.subscription,
      queue: QueueName.stripeSync,
      payload: job,
      requestId: requestContext.requestId(),
    });
  }
}
