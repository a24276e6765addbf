import { Injectable, Logger } from '@nestjs/common';
import { PrismaClient } from '@imagemart/database';
import type { LaunchPermissionChanged } from '@imagemart/contracts';
import { ListCache } from '../search/list-cache.js';

export type ProjectionOutcome = 'applied' | 'stale' | 'unknown-image';

/**
 * The catalog's copy of each image's launch permissions, from `permission.launch-permission.changed`:
 * `is_public` and `lp_revision` on the image, the named accounts in `launch_grant`. An event
 * carries the whole state; one with a revision no higher than the one kept is ignored, so
 * duplicates and events that overtake each other do no harm.
 */
@Injectable()
export class LaunchPermissionProjection {
  private readonly logger = new Logger(LaunchPermissionProjection.name);

  constructor(
    private readonly prisma: PrismaClient,
    private readonly listCache: ListCache,
  ) {}

  async apply(event: LaunchPermissionChanged): Promise<ProjectionOutcome> {
    const outcome = await this.prisma.$transaction(async (tx) => {
      // The row lock orders concurrent events of one image; the condition keeps only newer ones.
      const updated = await tx.$executeRaw`
        UPDATE "catalog"."image" SET is_public = ${event.public}, lp_revision = ${event.revision}, updated_at = now()
         WHERE id = ${event.imageId} AND lp_revision < ${event.revision}`;
      if (updated === 0) {
        const known = await tx.catalogImage.count({ where: { id: event.imageId } });
        return known ? 'stale' : 'unknown-image';
      }
      await tx.catalogLaunchGrant.deleteMany({ where: { imageId: event.imageId } });
      if (event.grants.length > 0) {
        await tx.catalogLaunchGrant.createMany({
          data: event.grants.map((g) => ({ imageId: event.imageId, accountId: g.accountId, shareState: g.shareState })),
        });
      }
      return 'applied';
    });
    // Who sees the image may have changed: no list page from before stays reachable.
    if (outcome === 'applied') await this.listCache.invalidate();
    if (outcome === 'unknown-image') {
      // Images are registered here before anything can grant launches of them.
      this.logger.warn({ msg: 'launch permissions of an image the catalog does not have; ignored', imageId: event.imageId, revision: event.revision });
    }
    return outcome;
  }
}
