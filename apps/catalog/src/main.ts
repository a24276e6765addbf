import 'reflect-metadata';
import { EventQueue } from '@imagemart/contracts';
import { runMain, startRpcService, stopOnSignals } from '@imagemart/messaging';
import { CatalogModule } from './catalog.module.js';
import { catalogConfigSchema } from './catalog.config.js';

runMain('catalog', async () => {
  const service = await startRpcService({
    service: 'catalog',
    configSchema: catalogConfigSchema,
    imports: [CatalogModule],
    outboxSchema: 'catalog',
    eventQueue: EventQueue.catalog,
  });
  stopOnSignals(service.stop, service.logger);
});
