import 'reflect-metadata';
import { EventQueue } from '@imagemart/contracts';
import { runMain, startRpcService, stopOnSignals } from '@imagemart/messaging';
import { BillingModule } from './billing.module.js';
import { billingConfigSchema } from './billing.config.js';
import { SubscriptionSweeper } from './subscriptions/subscription-sweeper.js';
import { MonthCloseSweeper } from './invoices/month-close.sweeper.js';

runMain('billing', async () => {
  const service = await startRpcService({
    service: 'billing',
    configSchema: billingConfigSchema,
    imports: [BillingModule],
    outboxSchema: 'billing',
    // Usage events: many in flight, so the batcher can write them many rows to a statement.
    eventQueue: EventQueue.billing,
    eventConcurrency: (config) => config.USAGE_EVENT_CONCURRENCY,
    afterStart: (app, config) => {
      app.get(SubscriptionSweeper).start(config.SUBSCRIPTION_SWEEP_INTERVAL_MS);
      if (config.MONTH_CLOSE_INTERVAL_MS > 0) app.get(MonthCloseSweeper).start(config.MONTH_CLOSE_INTERVAL_MS, config.MONTH_CLOSE_GRACE_MS);
      return Promise.resolve();
    },
  });
  stopOnSignals(service.stop, service.logger);
});
