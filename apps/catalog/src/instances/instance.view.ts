import type { CatalogInstance } from '@imagemart/database';
import type { InstanceChanged, InstanceState, InstanceView } from '@imagemart/contracts';

/** An instance row with its reservation's client token. */
export type InstanceRow = CatalogInstance & { clientToken: string | null };

export function toInstanceView(row: InstanceRow): InstanceView {
  return {
    instanceId: row.id,
    reservationId: row.reservationId,
    launchIndex: row.launchIndex,
    ownerId: row.accountId,
    imageId: row.imageId,
    instanceType: row.instanceType,
    productCode: row.productCode,
    state: row.state as InstanceState,
    stateReason: { code: row.stateReasonCode, message: row.stateReasonMessage },
    stateChangedAt: row.stateChangedAt.toISOString(),
    launchTime: row.createdAt.toISOString(),
    runningAt: row.runningAt?.toISOString() ?? null,
    stoppedAt: row.stoppedAt?.toISOString() ?? null,
    clientToken: row.clientToken,
  };
}

/** The `catalog.instance.changed` payload: the whole metering state of one instance. */
export function toInstanceChanged(row: CatalogInstance): InstanceChanged {
  return {
    instanceId: row.id,
    accountId: row.accountId,
    imageId: row.imageId,
    sellerId: row.sellerId,
    productCode: row.productCode,
    instanceType: row.instanceType,
    state: row.state as InstanceState,
    runningAt: row.runningAt?.toISOString() ?? null,
    stoppedAt: row.stoppedAt?.toISOString() ?? null,
    revision: row.revision,
  };
}
