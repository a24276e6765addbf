import type { Provider, Type } from '@nestjs/common';
import { stripeClientProvider } from './stripe.client.js';
import { StripeEventsHandler } from './stripe-events.handler.js';
import { StripeEventsService } from './stripe-events.service.js';
import { StripeRepository } from './stripe.repository.js';
import { StripeSyncProcessor } from './stripe-sync.processor.js';
import { StripeSyncQueue } from './stripe-sync.queue.js';
import { StripeSyncService } from './stripe-sync.service.js';
import { StripeUsageReporter } from './stripe-usage.reporter.js';

/**
 * Stripe's part of the billing module (docs/stripe.md). They live in BillingModule itself, since
 * subscriptions ask for syncs and the webhook events change subscriptions. Without
 * STRIPE_SECRET_KEY the client is null: no sync is asked for and no worker runs.
 */
export const STRIPE_PROVIDERS: Provider[] = [
  stripeClientProvider,
  StripeRepository,
  StripeSyncQueue,
  StripeSyncService,
  StripeSyncProcessor,
  StripeEventsService,
  StripeUsageReporter,
];

export const STRIPE_CONTROLLERS: Type[] = [StripeEventsHandler];
