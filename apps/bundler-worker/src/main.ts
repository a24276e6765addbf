import { runMain, stopOnSignals } from '@imagemart/messaging';
import { startBundlerWorker } from './bundler-worker.js';

// Bundle, verify and delete job handlers register here as they are built.
runMain('bundler-worker', async () => {
  const worker = await startBundlerWorker();
  stopOnSignals(worker.stop, worker.logger);
});
