import 'reflect-metadata';
import { runMain, startRpcService, stopOnSignals } from '@imagemart/messaging';
import { BillingModule } from './billing.module.js';
import { billingConfigSchema } from './billing.config.js';
import { SubscriptionSweeper } from './subscriptions/subscription-sweeper.js';

runMain('billing', async () => {
  const service = await startRpcService({
    service: 'billing',
    configSchema: billingConfigSchema,
    imports: [BillingModule],
    outboxSchema: 'billing',
    afterStart: (app, config) => {
      app.get(SubscriptionSweeper).start(config.SUBSCRIPTION_SWEEP_INTERVAL_MS);
      return Promise.resolve();
    },
  });
  stopOnSignals(service.stop, service.logger);
});
