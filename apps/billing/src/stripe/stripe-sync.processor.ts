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
import {
  STRIPE_USAGE_JOB,
  stripeUsageJobSchema,
  usageIdentifier,
  type StripeUsageJob,
} from './stripe-usage.job.js';
import { StripeUsageReporter } from './stripe-usage.reporter.js';

const subscriptionJobSchema = z.object({
  subscriptionId: z.string().regex(/^sub-[0-9a-f]{17}$/),
  revision: z.number().int().min(1),
});

/**
 * The worker of `QueueName.stripeSync` in each billing replica, when Stripe is configured. Jobs
 * come from the billing outbox (job id = outbox row id); a failed job is retried with backoff
 * (the queue's defaults), then kept in the failed set for a person. The sync itself is idempotent,
 * so a job that runs twice, or two jobs of one subscription, leave Stripe as one run would; a usage
 * job sends each meter event under its identifier and an idempotency key, so Stripe counts it once.
 */
@Injectable()
export class StripeSyncProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(StripeSyncProcessor.name);
  private worker?: Worker<DomainEventJob>;

  constructor(
    private readonly sync: StripeSyncService,
    private readonly usage: StripeUsageReporter,
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
    const requestId = job.data.requestId ?? `job-${job.id}`;
    if (job.name === STRIPE_USAGE_JOB) {
      const usage = stripeUsageJobSchema.safeParse(job.data.payload);
      if (!usage.success) throw new UnrecoverableError(`Invalid ${job.name} payload: ${usage.error.message}`);
      await requestContext.run({ requestId }, () => this.reportUsage(job, usage.data));
      return;
    }
    if (job.name !== StripeSyncJobName.subscription)
      throw new UnrecoverableError(`Unknown Stripe sync job ${job.name}`);
    const parsed = subscriptionJobSchema.safeParse(job.data.payload);
    if (!parsed.success) throw new UnrecoverableError(`Invalid ${job.name} payload: ${parsed.error.message}`);
    await requestContext.run({ requestId }, () => this.sync.syncSubscription(parsed.data.subscriptionId));
  }

  /**
   * Sends the job's usage, one meter event per instance. The job's progress counts the events
   * Stripe confirmed, so a later attempt starts after them; the one in flight when an attempt
   * failed is sent again under the same identifier and idempotency key, and Stripe counts it once.
   */
  private async reportUsage(job: Job<DomainEventJob>, data: StripeUsageJob): Promise<void> {
    const done = typeof job.progress === 'number' ? job.progress : 0;
    const timestamp = new Date(data.timestamp * 1000);
    for (let i = done; i < data.usage.length; i++) {
      const u = data.usage[i];
      const outcome = await this.usage.report({
        accountId: data.accountId,
        productCode: u.productCode,
        instanceType: u.instanceType,
        seconds: BigInt(u.seconds),
        identifier: usageIdentifier(u.instanceId, data.month),
        timestamp,
      });
      // Paid usage of a buyer Stripe has no customer for: their subscription never reached Stripe.
      if (outcome === 'skipped' && i === done)
        this.logger.warn(
          `Stripe usage of account ${data.accountId} for ${data.month} not sent: no Stripe customer`,
        );
      await job.updateProgress(i + 1);
    }
  }
}
