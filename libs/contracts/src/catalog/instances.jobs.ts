import { z } from 'zod';
import { instanceIdSchema } from '../events/domain-events.js';

/**
 * The instance host queue: the catalog hands launches and terminations to an instance host through
 * it (docs/launches.md). Jobs are written to the catalog's outbox in the transaction that changes
 * the instance and relayed like domain events (a `DomainEventJob` whose payload is below), so none
 * is lost and none is queued for a change that rolled back. Do not rename without a migration plan:
 * jobs already waiting under the old name would never run.
 */
export const INSTANCE_HOST_QUEUE = 'instance-host';

export const InstanceHostJobName = {
  /** Boot a pending instance: fetch and verify the bundle through a grant, then confirm running. */
  start: 'host-start',
  /** Stop a shutting-down instance, then confirm terminated. */
  stop: 'host-stop',
} as const;
export type InstanceHostJobName = (typeof InstanceHostJobName)[keyof typeof InstanceHostJobName];

export const instanceHostJobSchema = z.strictObject({ instanceId: instanceIdSchema });
export type InstanceHostJob = z.infer<typeof instanceHostJobSchema>;
