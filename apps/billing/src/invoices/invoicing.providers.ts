import type { Provider, Type } from '@nestjs/common';
import { DOMAIN_EVENT_HANDLERS, type DomainEventHandlers } from '@imagemart/messaging';
import { RevenueHandler } from '../revenue/revenue.handler.js';
import { RevenueService } from '../revenue/revenue.service.js';
import { UsageIngestBatcher } from '../usage/usage-ingest.batcher.js';
import { UsageHandler } from '../usage/usage.handler.js';
import { UsageRepository } from '../usage/usage.repository.js';
import { UsageService } from '../usage/usage.service.js';
import { BILLING_PROVIDER, LedgerBillingProvider } from './billing-provider.js';
import { InvoicesHandler } from './invoices.handler.js';
import { InvoicesRepository } from './invoices.repository.js';
import { InvoicesService } from './invoices.service.js';
import { MonthCloseSweeper } from './month-close.sweeper.js';

/**
 * Usage metering, invoices and the revenue report (docs/pricing.md), part of BillingModule. The
 * billing event queue carries `catalog.instance.changed`; each job waits on the batcher.
 * BILLING_PROVIDER is the built-in ledger unless a payment provider replaces it.
 */
export const INVOICING_PROVIDERS: Provider[] = [
  UsageRepository,
  UsageIngestBatcher,
  UsageService,
  InvoicesRepository,
  InvoicesService,
  MonthCloseSweeper,
  RevenueService,
  { provide: BILLING_PROVIDER, useClass: LedgerBillingProvider },
  {
    provide: DOMAIN_EVENT_HANDLERS,
    useFactory: (batcher: UsageIngestBatcher): DomainEventHandlers => ({
      'catalog.instance.changed': (payload) => batcher.submit(payload),
    }),
    inject: [UsageIngestBatcher],
  },
];

export const INVOICING_CONTROLLERS: Type[] = [UsageHandler, InvoicesHandler, RevenueHandler];
