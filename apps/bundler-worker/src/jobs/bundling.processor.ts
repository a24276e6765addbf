import { UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from '@imagemart/observability';
import { requestContext } from '@imagemart/observability';

/**
 * A handler for one job name of the bundling queue. `signal` aborts when the worker gives the job
 * up (it lost the job's lock, or is closing): stop, and leave the job to whoever has it now.
 */
export type BundlingJobHandler = (job: Job, signal?: AbortSignal) => Promise<unknown>;

/**
 * Routes each job of the bundling queue to the handler registered for its name. A job whose name
 * has no handler fails at once (UnrecoverableError), visible in the failed set, rather than being
 * retried to no end. Each job runs in the request context of the request that queued it.
 */
export function createBundlingProcessor(handlers: ReadonlyMap<string, BundlingJobHandler>, logger: Logger) {
  // Three parameters: BullMQ hands a processor of that length an abort signal per job.
  return async (job: Job, _token?: string, signal?: AbortSignal): Promise<unknown> => {
    const handler = handlers.get(job.name);
    if (!handler) {
      throw new UnrecoverableError(`No handler for bundling job '${job.name}'`);
    }
    const data: unknown = job.data;
    const requestId =
      typeof data === 'object' && data !== null && typeof (data as { requestId?: unknown }).requestId === 'string'
        ? (data as { requestId: string }).requestId
        : `job-${job.id ?? 'unknown'}`;
    return requestContext.run({ requestId }, async () => {
      logger.info({ jobId: job.id, name: job.name, attempt: job.attemptsMade + 1 }, 'bundling job started');
      return handler(job, signal);
    });
  };
}
