import type { Logger } from '@imagemart/observability';

/**
 * Stops the process cleanly on SIGTERM or SIGINT: in-flight work finishes, connections close,
 * then it exits. A stop that takes longer than `graceMs` exits anyway.
 */
export function stopOnSignals(stop: () => Promise<void>, logger: Logger, graceMs = 10_000): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    // Ctrl+C in a terminal can deliver SIGINT and then SIGTERM: stop once.
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const force = setTimeout(() => {
      logger.error({ graceMs }, 'did not stop in time; exiting');
      process.exit(1);
    }, graceMs);
    force.unref();
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', handle);
  process.once('SIGINT', handle);
}
