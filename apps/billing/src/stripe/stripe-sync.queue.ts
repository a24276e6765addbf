import { Inject, Injectable } from '@nestjs/common';
import { appendOutboxEvent, type OutboxWriter, type Prisma } from '@imagemart/database';
import { QueueName, StripeSyncJobName, type StripeSyncSubscriptionJob } from '@imagemart/contracts';
import { requestContext } from '@imagemart/observability';
import { STRIPE_CLIENT } from './stripe.client.js';
import { UsageRepository } from '../usage/usage.repository.js';
import { STRIPE_USAGE_JOB, USAGE_JOB_INSTANCES, type StripeUsageJob } from './stripe-usage.job.js';
import type Stripe from 'stripe';

/**
 * Asks for a Stripe sync in the transaction that changed the record (a subscription's change, a
 * buyer's month close): the job is written to the billing outbox with the change, so it exists if
 * and only if the change committed, and the relay delivers it to `QueueName.stripeSync`. Nothing
 * is written when Stripe is not configured.
 */
@Injectable()
export class StripeSyncQueue {
  constructor(
    @Inject(STRIPE_CLIENT) private readonly stripe: Stripe | null,
    private readonly usage: UsageRepository,
  ) {}

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

  /**
   * Asks, in the transaction that closes `month` for a buyer, for that month's paid usage to be
   * sent to Stripe: each instance's billed seconds, read in that transaction, go into jobs of at
   * most {@link USAGE_JOB_INSTANCES} instances. Returns the number of instances.
   */
  async usageClosed(
    tx: Prisma.TransactionClient,
    close: { accountId: string; month: string; start: Date; end: Date },
  ): Promise<number> {
    if (!this.stripe) return 0;
    const usage = await this.usage.paidSecondsPerInstance(close.accountId, close.start, close.end, tx);
    // The last second of the month: inside the Stripe period the month is billed in (its cycle is the calendar month).
    const timestamp = Math.floor(close.end.getTime() / 1000) - 1;
    for (let i = 0; i < usage.length; i += USAGE_JOB_INSTANCES) {
      const job: StripeUsageJob = {
        accountId: close.accountId,
        month: close.month,
        timestamp,
        usage: usage.slice(i, i + USAGE_JOB_INSTANCES).map((u) => ({ ...u, seconds: u.seconds.toString() })),
      };
      await appendOutboxEvent(tx, 'billing', {
        type: STRIPE_USAGE_JOB,
        queue: QueueName.stripeSync,
        payload: job,
        requestId: requestContext.requestId(),
      });
    }
    return usage.length;
  }
}
