import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { UnrecoverableError, type Job, type Worker } from 'bullmq';
import { APP_CONFIG } from '@imagemart/config';
import { INSTANCE_HOST_QUEUE, InstanceHostJobName, instanceHostJobSchema, type DomainEventJob } from '@imagemart/contracts';
import { createWorker } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import type { CatalogConfig } from '../catalog.config.js';
import { INSTANCE_HOST_DRIVER, type InstanceHostDriver } from './instance-host.driver.js';
import { InstancesService } from './instances.service.js';

/**
 * Runs the instance host queue in the catalog process when the host driver is the simulated one:
 * the catalog owns the instances' states, so the job that confirms a state change writes where the
 * state lives, in one transaction with its event (docs/launches.md says why not the bundler-worker).
 * With INSTANCE_HOST_DRIVER=external a host agent consumes the queue instead.
 */
@Injectable()
export class InstanceHostProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(InstanceHostProcessor.name);
  private worker?: Worker<DomainEventJob>;

  constructor(
    private readonly instances: InstancesService,
    @Inject(APP_CONFIG) private readonly config: CatalogConfig,
    @Inject(INSTANCE_HOST_DRIVER) private readonly driver: InstanceHostDriver | null,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.driver) return;
    this.worker = createWorker<DomainEventJob>(INSTANCE_HOST_QUEUE, (job) => this.process(job), {
      url: this.config.REDIS_URL,
      prefix: this.config.REDIS_PREFIX,
      concurrency: this.config.INSTANCE_HOST_CONCURRENCY,
      logger: { error: (obj, msg) => this.logger.error({ msg, ...obj }) },
    });
    this.worker.on('failed', (job, err) =>
      this.logger.warn({ msg: 'instance host job failed', jobId: job?.id, name: job?.name, attempt: job?.attemptsMade, err: err.message }),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.worker?.close();
    await this.driver?.close?.();
  }

  private async process(job: Job<DomainEventJob>): Promise<void> {
    const parsed = instanceHostJobSchema.safeParse(job.data.payload);
    if (!parsed.success) throw new UnrecoverableError(`Invalid ${job.name} payload: ${parsed.error.message}`);
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    await requestContext.run({ requestId: job.data.requestId ?? `job-${job.id ?? ''}` }, async () => {
      if (job.name === InstanceHostJobName.start) return this.instances.hostStart(parsed.data, lastAttempt);
      if (job.name === InstanceHostJobName.stop) return this.instances.hostStop(parsed.data);
      throw new UnrecoverableError(`Unknown instance host job ${job.name}`);
    });
  }
}
