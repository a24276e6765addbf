import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import type { InstanceChanged } from '@imagemart/contracts';
import { BILLING_PROVIDER, type BillingProvider } from '../invoices/billing-provider.js';
import { UsageRepository } from './usage.repository.js';

interface Pending {
  event: InstanceChanged;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Tuning of the batcher; the defaults suit a consumer with a few hundred jobs in flight. */
export interface UsageBatcherOptions {
  /** Most events in one statement. */
  maxBatch: number;
  /** How long the first event of a batch waits for others, in milliseconds. */
  lingerMs: number;
  /** Batches written at once (each is its own statement and connection). */
  maxInFlight: number;
}

export const USAGE_BATCHER_OPTIONS = Symbol('USAGE_BATCHER_OPTIONS');
const DEFAULTS: UsageBatcherOptions = { maxBatch: 1000, lingerMs: 2, maxInFlight: 2 };

/**
 * Turns many `catalog.instance.changed` jobs in flight into one multi-row upsert: each job's
 * handler submits its event and waits; the promise settles only once the statement holding the
 * event has committed (or failed, so BullMQ retries the job). One statement per event could not
 * keep up with the queue (docs/pricing.md, "Throughput").
 */
@Injectable()
export class UsageIngestBatcher implements OnApplicationShutdown {
  private readonly logger = new Logger(UsageIngestBatcher.name);
  private readonly options: UsageBatcherOptions;
  private buffer: Pending[] = [];
  private timer?: NodeJS.Timeout;
  private inFlight = 0;
  private readonly flushes = new Set<Promise<void>>();

  constructor(
    private readonly usage: UsageRepository,
    @Inject(BILLING_PROVIDER) private readonly provider: BillingProvider,
    @Optional() @Inject(USAGE_BATCHER_OPTIONS) options?: Partial<UsageBatcherOptions>,
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  /** Resolves once the event is stored (or found older than what is stored). */
  submit(event: InstanceChanged): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.buffer.push({ event, resolve, reject });
      this.schedule();
    });
  }

  /** Writes what is buffered and waits for every write in progress. */
  async drain(): Promise<void> {
    while (this.buffer.length > 0 || this.flushes.size > 0) {
      if (this.buffer.length > 0 && this.inFlight < this.options.maxInFlight) this.flush();
      await Promise.race(this.flushes);
    }
  }

  onApplicationShutdown(): Promise<void> {
    return this.drain();
  }

  private schedule(): void {
    if (this.inFlight >= this.options.maxInFlight) return; // a finishing flush picks the buffer up
    if (this.buffer.length >= this.options.maxBatch) {
      this.flush();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      if (this.inFlight < this.options.maxInFlight) this.flush();
    }, this.options.lingerMs);
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.buffer.splice(0, this.options.maxBatch);
    if (batch.length === 0) return;
    this.inFlight++;
    const done = this.write(batch).finally(() => {
      this.inFlight--;
      this.flushes.delete(done);
      if (this.buffer.length > 0) this.schedule();
    });
    this.flushes.add(done);
  }

  private async write(batch: Pending[]): Promise<void> {
    const events = batch.map((p) => p.event);
    try {
      await this.usage.upsertMany(events);
      for (const p of batch) p.resolve();
    } catch (err) {
      this.logger.warn(`Usage batch of ${batch.length} failed: ${(err as Error).message}`);
      if (batch.length === 1) {
        batch[0].reject(err);
        return;
      }
      // One bad event must not fail its neighbours (and, retried with others, theirs): each is
      // written on its own, and only those that fail again are retried by the queue.
      for (const p of batch) {
        await this.usage.upsertMany([p.event]).then(p.resolve, p.reject);
      }
    }
    // The hand-on to an outside provider never holds up metering; its failures are its own to retry.
    this.provider
      .usageRecorded(events)
      .catch((err: unknown) =>
        this.logger.warn(`Billing provider did not take usage: ${(err as Error).message}`),
      );
  }
}
