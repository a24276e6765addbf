import { runMain, stopOnSignals } from '@imagemart/messaging';
import { startBundlerWorker } from './bundler-worker.js';

// The bundle, verify and delete jobs of the bundling queue (see docs/bundling.md).
runMain('bundler-worker', async () => {
  const worker = await startBundlerWorker();
  stopOnSignals(worker.stop, worker.logger);
});
