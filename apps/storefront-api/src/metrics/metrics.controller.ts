import { Controller, Get, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Gauge } from 'prom-client';
import { QueueName } from '@imagemart/contracts';
import { QueueRegistry } from '@imagemart/messaging';
import { metricsRegistry } from '@imagemart/observability';
import { Public } from '../auth/public.decorator.js';

const STATES = ['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized', 'waiting-children'] as const;

/** GET /metrics: Prometheus text format; HTTP, RPC and queue figures. */
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

  @Public()
  @Get('metrics')
  @ApiOperation({ summary: 'Prometheus metrics.' })
  async metrics(@Res() reply: FastifyReply): Promise<void> {
    const body = await metricsRegistry.metrics();
    await reply.header('content-type', metricsRegistry.contentType).send(body);
  }
}
