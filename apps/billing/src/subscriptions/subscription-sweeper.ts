import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { SubscriptionsService } from './subscriptions.service.js';

/**
 * Runs the subscription sweep every `intervalMs` in this replica (main.ts starts it with
 * SUBSCRIPTION_SWEEP_INTERVAL_MS). Every replica runs one; the sweep's SKIP LOCKED shares the rows.
 */
@Injectable()
export class SubscriptionSweeper implements OnApplicationShutdown {
  private readonly logger = new Logger(SubscriptionSweeper.name);
  private loop?: Promise<void>;
  private abort?: AbortController;

  constructor(private readonly subscriptions: SubscriptionsService) {}

  start(intervalMs: number): void {
    if (this.loop) return;
    this.abort = new AbortController();
    this.loop = this.run(intervalMs, this.abort.signal);
  }

  /** Lets a sweep in progress finish, then returns. */
  async stop(): Promise<void> {
    this.abort?.abort();
    await this.loop;
    this.loop = undefined;
  }

  onApplicationShutdown(): Promise<void> {
    return this.stop();
  }

  private async run(intervalMs: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const { ended, renewed } = await this.subscriptions.sweep();
        if (ended || renewed) this.logger.log(`Subscription sweep: ${ended} ended, ${renewed} moved to a new period`);
      } catch (err) {
        // The database is away: the next round tries again.
        this.logger.error(`Subscription sweep failed: ${(err as Error).message}`);
      }
      await sleep(intervalMs, undefined, { signal }).catch(() => undefined);
    }
  }
}
