import { Controller, Get, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Gauge } from 'prom-client';
import { ErrorCode, QueueName, type Caller } from '@imagemart/contracts';
import { QueueRegistry } from '@imagemart/messaging';
import { metricsRegistry } from '@imagemart/observability';
import { CurrentCaller } from '../auth/caller.decorator.js';
import { ApiProblem } from '../problem/api-problem.js';

const STATES = ['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized', 'waiting-children'] as const;

/** GET /metrics: Prometheus text format; HTTP, RPC and queue figures; admins only. */
@ApiTags('operations')
@Controller()
export class MetricsController {
  constructor(queues: QueueRegistry) {
    if (!metricsRegistry.getSingleMetric('imagemart_queue_jobs')) {
      new Gauge({
        name: 'imagemart_queue_jobs',
        help: 'Jobs in each BullMQ queue, by state, read at scrape time.',
        labelNames: ['queue', 'state'] as const,
        registers: [metricsRegistry],
        async collect() {
          this.reset();
          for (const name of Object.values(QueueName)) {
            // Redis away: leave this queue out rather than fail the whole scrape.
            const counts = await queues.get(name).getJobCounts(...STATES).catch(() => undefined);
            if (!counts) continue;
            for (const state of STATES) this.set({ queue: name, state }, counts[state] ?? 0);
          }
        },
      });
    }
  }

  @Get('metrics')
  @ApiOperation({ summary: 'Prometheus metrics (admins: a scraper sends an admin API key as its bearer token).' })
  async metrics(@CurrentCaller() caller: Caller, @Res() reply: FastifyReply): Promise<void> {
    // Request rates by route, queue depths and failures say how the platform is used and where it
    // hurts: not for buyers and sellers, nor for anyone without a key.
    if (!caller.roles.includes('admin')) throw new ApiProblem(ErrorCode.UnauthorizedOperation, 'The metrics are for admins.');
    const body = await metricsRegistry.metrics();
    await reply.header('content-type', metricsRegistry.contentType).send(body);
  }
}
