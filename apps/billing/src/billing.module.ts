import { Module } from '@nestjs/common';
import { DOMAIN_EVENT_HANDLERS } from '@imagemart/messaging';
import { CatalogClient } from './catalog/catalog.client.js';
import { EntitlementsHandler } from './entitlements/entitlements.handler.js';
import { EntitlementsService } from './entitlements/entitlements.service.js';
import { PricingHandler } from './pricing/pricing.handler.js';
import { PricingRepository } from './pricing/pricing.repository.js';
import { PricingService } from './pricing/pricing.service.js';
import { SubscriptionSweeper } from './subscriptions/subscription-sweeper.js';
import { SubscriptionsHandler } from './subscriptions/subscriptions.handler.js';
import { SubscriptionsRepository } from './subscriptions/subscriptions.repository.js';
import { SubscriptionsService } from './subscriptions/subscriptions.service.js';
import { STRIPE_CONTROLLERS, STRIPE_PROVIDERS } from './stripe/stripe.providers.js';
import { INVOICING_CONTROLLERS, INVOICING_PROVIDERS } from './invoices/invoicing.providers.js';
import { MonthCloseSweeper } from './invoices/month-close.sweeper.js';

/**
 * The billing service: platform and product pricing, subscriptions and the entitlements they
 * give. `PrismaClient` and `APP_CONFIG` come from the service runtime (or the test module).
 */
@Module({
  controllers: [PricingHandler, SubscriptionsHandler, EntitlementsHandler, ...STRIPE_CONTROLLERS, ...INVOICING_CONTROLLERS],
  providers: [
    CatalogClient,
    PricingRepository,
    PricingService,
    SubscriptionsRepository,
    SubscriptionsService,
    SubscriptionSweeper,
    EntitlementsService,
    ...STRIPE_PROVIDERS,
    ...INVOICING_PROVIDERS,
  ],
  exports: [SubscriptionSweeper, MonthCloseSweeper, DOMAIN_EVENT_HANDLERS],
})
export class BillingModule {}
