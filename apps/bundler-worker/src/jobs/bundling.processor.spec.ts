import { UnrecoverableError, type Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { createLogger, requestContext } from '@imagemart/observability';
import { createBundlingProcessor, type BundlingJobHandler } from './bundling.processor.js';

const logger = createLogger({ service: 'test', level: 'silent' });
const job = (name: string, data: unknown, id = 'job-1') => ({ name, data, id, attemptsMade: 0 }) as unknown as Job;

describe('createBundlingProcessor', () => {
  it('runs the handler for the job name inside the request context of the request that queued it', async () => {
    const seen: (string | undefined)[] = [];
    const handlers = new Map<string, BundlingJobHandler>([
      ['bundle', () => Promise.resolve(seen.push(requestContext.requestId()))],
    ]);
    const process = createBundlingProcessor(handlers, logger);
    await process(job('bundle', { requestId: 'req-42' }));
    await process(job('bundle', {}, 'job-7'));
    expect(seen).toEqual(['req-42', 'job-job-7']);
  });

  it('fails a job with no handler at once, without retries', async () => {
    const process = createBundlingProcessor(new Map(), logger);
    await expect(process(job('mystery', {}))).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(process(job('mystery', {}))).rejects.toThrow("No handler for bundling job 'mystery'");
  });
});
