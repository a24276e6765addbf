import { BundleKeys, type DeleteJob } from '@imagemart/contracts';
import type { ObjectStore } from '@imagemart/object-store';
import type { Logger } from '@imagemart/observability';

export interface DeleteDeps {
  store: ObjectStore;
  logger: Logger;
}

/**
 * The delete job's work: removes everything under the image's bundle prefix (the manifest and
 * its parts). Idempotent: deleting a bundle that is already gone deletes nothing and succeeds.
 * Returns how many objects it removed.
 */
export async function deleteBundle(deps: DeleteDeps, job: DeleteJob): Promise<{ deleted: number }> {
  const prefix = BundleKeys.prefix(job.imageId);
  // The manifest first: a half-deleted bundle is never mistaken for a stored one.
  await deps.store.delete(BundleKeys.manifest(job.imageId));
  const deleted = await deps.store.deletePrefix(prefix);
  deps.logger.info({ imageId: job.imageId, deleted }, 'bundle deleted');
  return { deleted };
}
