import 'reflect-metadata';
import { baseConfigSchema } from '@imagemart/config';
import { runMain, startRpcService, stopOnSignals } from '@imagemart/messaging';
import { CatalogModule } from './catalog.module.js';

runMain('catalog', async () => {
  const service = await startRpcService({
    service: 'catalog',
    configSchema: baseConfigSchema,
    imports: [CatalogModule],
    outboxSchema: 'catalog',
  });
  stopOnSignals(service.stop, service.logger);
});
