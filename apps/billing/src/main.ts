import 'reflect-metadata';
import { baseConfigSchema } from '@imagemart/config';
import { runMain, startRpcService, stopOnSignals } from '@imagemart/messaging';
import { BillingModule } from './billing.module.js';

runMain('billing', async () => {
  const service = await startRpcService({
    service: 'billing',
    configSchema: baseConfigSchema,
    imports: [BillingModule],
    outboxSchema: 'billing',
  });
  stopOnSignals(service.stop, service.logger);
});
