import 'reflect-metadata';
import { runMain, stopOnSignals } from '@imagemart/messaging';
import { startStorefront } from './storefront.app.js';

runMain('storefront-api', async () => {
  const storefront = await startStorefront();
  stopOnSignals(storefront.stop, storefront.logger);
});
