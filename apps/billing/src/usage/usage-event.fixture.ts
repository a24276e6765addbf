import type { InstanceChanged } from '@imagemart/contracts';

let counter = 0;
/** A fresh instance id, `i-` + 17 hex digits. */
export const newInstanceId = (): string =>
  `i-${(Date.now().toString(16) + (++counter).toString(16).padStart(6, '0')).slice(-17).padStart(17, '0')}`;

/** A fresh image id, `ami-` + 17 hex digits. */
export const newImageId = (): string =>
  `ami-${(Date.now().toString(16) + (++counter).toString(16).padStart(6, '0')).slice(-17).padStart(17, '0')}`;

/**
 * The `catalog.instance.changed` payload of an instance that ran from `runningAt` to `stoppedAt`
 * (null: still running), as the catalog would publish it at `revision`.
 */
export function instanceEvent(fields: {
  instanceId?: string;
  accountId: string;
  sellerId: string;
  productCode: string | null;
  instanceType: string;
  runningAt: string | null;
  stoppedAt?: string | null;
  revision?: number;
  imageId?: string;
}): InstanceChanged {
  const stoppedAt = fields.stoppedAt ?? null;
  return {
    instanceId: fields.instanceId ?? newInstanceId(),
    accountId: fields.accountId,
    imageId: fields.imageId ?? newImageId(),
    sellerId: fields.sellerId,
    productCode: fields.productCode,
    instanceType: fields.instanceType,
    state: stoppedAt ? 'terminated' : fields.runningAt ? 'running' : 'pending',
    runningAt: fields.runningAt,
    stoppedAt,
    revision: fields.revision ?? (stoppedAt ? 3 : 2),
  };
}
