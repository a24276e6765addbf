import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { UnrecoverableError, type Job, type Worker } from 'bullmq';
import type Stripe from 'stripe';
import { z } from 'zod';
import { APP_CONFIG, type BaseConfig } from '@imagemart/config';
import { QueueName, StripeSyncJobName, type DomainEventJob } from '@imagemart/contracts';
import { createWorker } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import { STRIPE_CLIENT } from './stripe.client.js';
import { StripeSyncService } from './stripe-sync.service.js';

const subscriptionJobSchema = z.object({
  subscriptionId: z.string().regex(/^sub-[0-9a-f]{17}$/),
  revision: z.number().int().min(1),
});

/**
 * The worker of `QueueName.stripeSync` in each billing replica, when Stripe is configured. Jobs
 * come from the billing outbox (job id = outbox row id); a failed job is retried with backoff
 * (the queue's defaults), then kept in the failed set for a person. The sync itself is idempotent,
 * so a job that runs twice, or two jobs of one subscription, leave Stripe as one run would.
 */
@Injectable()
export class StripeSyncProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(StripeSyncProcessor.name);
  private worker?: Worker<DomainEventJob>;

  constructor(
    private readonly sync: StripeSyncService,
    @Inject(APP_CONFIG) private readonly config: BaseConfig,
    @Inject(STRIPE_CLIENT) private readonly stripe: Stripe | null,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.stripe) return;
    this.worker = createWorker<DomainEventJob, void>(QueueName.stripeSync, (job) => this.process(job), {
      url: this.config.REDIS_URL,
      prefix: this.config.REDIS_PREFIX,
      concurrency: 4,
      logger: { error: (obj, msg) => this.logger.error({ ...obj, msg }) },
    });
    this.worker.on('failed', (job, err) =>
      this.logger.warn(
        `Stripe sync job ${job?.id} (${job?.name}) failed on attempt ${job?.attemptsMade}: ${err.message}`,
      ),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.worker?.close();
  }

  async process(job: Job<DomainEventJob>): Promise<void> {
    if (job.name !== StripeSyncJobName.subscription)
      throw new UnrecoverableError(`Unknown Stripe sync job ${job.name}`);
    const parsed = subscriptionJobSchema.safeParse(job.data.payload);
    if (!parsed.success) throw new UnrecoverableError(`Invalid ${job.name} payload: ${parsed.error.message}`);
    await requestContext.run({ requestId: job.data.requestId ?? `job-${job.id}` }, () =>
      this.sync.syncSubscription(parsed.data.subscriptionId),
    );
  }
}
