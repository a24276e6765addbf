import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG } from '@imagemart/config';
import { PrismaClient } from '@imagemart/database';
import type { CatalogConfig } from '../catalog.config.js';

/**
 * Popularity from launches: a launch appends its count to `catalog.image_launch_tally` (in the
 * launch statement), and this adds the tallies to the images' `launch_count` every
 * LAUNCH_COUNT_FOLD_INTERVAL_MS, so no launch writes the image's row. Every catalog process folds;
 * the statement shares the work between them (migration 20261201000500_catalog_launch_tally).
 */
@Injectable()
export class LaunchCounts implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(LaunchCounts.name);
  private timer?: NodeJS.Timeout;
  private folding?: Promise<unknown>;

  constructor(
    private readonly prisma: PrismaClient,
    @Inject(APP_CONFIG) private readonly config: CatalogConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.tick(), this.config.LAUNCH_COUNT_FOLD_INTERVAL_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.folding;
  }

  /** Adds the tallies to the counters now; answers how many images' counters moved. */
  async fold(): Promise<number> {
    const rows = await this.prisma.$queryRaw<{ images: number }[]>`SELECT "catalog"."fold_launch_tally"() AS images`;
    return rows[0]?.images ?? 0;
  }

  private async tick(): Promise<void> {
    if (this.folding) return;
    this.folding = this.fold().catch((err: unknown) =>
      // The tallies stay where they are; the next fold takes them.
      this.logger.warn({ msg: 'launch counts could not be folded; the next fold retries', err: (err as Error).message }),
    );
    try {
      await this.folding;
    } finally {
      this.folding = undefined;
    }
  }
}
