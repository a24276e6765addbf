import { Inject, Injectable } from '@nestjs/common';
import Stripe from 'stripe';
import { STRIPE_CLIENT } from './stripe.client.js';
import { StripeRepository } from './stripe.repository.js';
import { StripeSyncService } from './stripe-sync.service.js';

export interface UsageReport {
  accountId: string;
  productCode: string;
  instanceType: string;
  /** Billed seconds, a whole number. */
  seconds: bigint;
  /**
   * Names this piece of usage for good (say `<instanceId>:<YYYY-MM>`): Stripe counts one meter
   * event per identifier, so reporting the same usage again adds nothing.
   */
  identifier: string;
  /** When the usage happened; Stripe takes events up to 35 days old. */
  timestamp: Date;
}

/** `sent`; `duplicate`: Stripe had it already; `skipped`: Stripe is off, or the buyer has no Stripe customer (nothing of theirs is billed there). */
export type UsageReportOutcome = 'sent' | 'duplicate' | 'skipped';

/**
 * Sends a paid product's usage to Stripe as a meter event, counted in seconds on the meter of
 * the product and instance type; the metered price on the buyer's Stripe subscription bills it.
 * The call carries an idempotency key and the event an identifier, both the usage's own name, so
 * a retry, or the same usage reported twice, is counted once.
 */
@Injectable()
export class StripeUsageReporter {
  constructor(
    private readonly links: StripeRepository,
    private readonly sync: StripeSyncService,
    @Inject(STRIPE_CLIENT) private readonly stripe: Stripe | null,
  ) {}

  async report(usage: UsageReport): Promise<UsageReportOutcome> {
    if (!this.stripe || usage.seconds <= 0n) return 'skipped';
    const customer = await this.links.customerOf(usage.accountId);
    if (!customer) return 'skipped';
    const meter = await this.sync.ensureMeter(usage.productCode, usage.instanceType);
    try {
      await this.stripe.billing.meterEvents.create(
        {
          event_name: meter.eventName,
          identifier: usage.identifier,
          timestamp: Math.floor(usage.timestamp.getTime() / 1000),
          payload: { stripe_customer_id: customer, value: usage.seconds.toString() },
        },
        { idempotencyKey: `imagemart:meter-event:${usage.identifier}` },
      );
      return 'sent';
    } catch (err) {
      // The identifier was counted already (reported under another key, or after the key expired).
      if (err instanceof Stripe.errors.StripeInvalidRequestError && err.code === 'resource_already_exists')
        return 'duplicate';
      throw err;
    }
  }
}
