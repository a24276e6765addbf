import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { monthLabel } from './invoice.calculator.js';
import { InvoicesService } from './invoices.service.js';

/**
 * Closes the previous month once it has ended plus a grace period (for events still on their
 * way), in every replica; the month close shares its buyers between replicas with SKIP LOCKED.
 * A month whose close ran to the end is skipped.
 */
@Injectable()
export class MonthCloseSweeper implements OnApplicationShutdown {
  private readonly logger = new Logger(MonthCloseSweeper.name);
  private loop?: Promise<void>;
  private abort?: AbortController;

  constructor(private readonly invoices: InvoicesService) {}

  start(intervalMs: number, graceMs: number): void {
    if (this.loop) return;
    this.abort = new AbortController();
    this.loop = this.run(intervalMs, graceMs, this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort?.abort();
    await this.loop;
    this.loop = undefined;
  }

  onApplicationShutdown(): Promise<void> {
    return this.stop();
  }

  /** One round: closes the month before the one `now - graceMs` falls in, unless already closed. */
  async sweep(graceMs: number, now = new Date()): Promise<void> {
    const shifted = new Date(now.getTime() - graceMs);
    const month = monthLabel(new Date(Date.UTC(shifted.getUTCFullYear(), shifted.getUTCMonth() - 1, 1)));
    if (await this.invoices.closed(month)) return;
    const result = await this.invoices.closeMonth(month, now);
    if (result.buyers > 0)
      this.logger.log(
        `Closed ${month}: ${result.buyers} buyers, ${result.invoices} invoices, ${result.creditNotes} credit notes`,
      );
  }

  private async run(intervalMs: number, graceMs: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.sweep(graceMs);
      } catch (err) {
        // The database is away: the next round tries again.
        this.logger.error(`Month close failed: ${(err as Error).message}`);
      }
      await sleep(intervalMs, undefined, { signal }).catch(() => undefined);
    }
  }
}
