import type { CatalogImage } from '@imagemart/database';
import type {
  Architecture,
  BlockDeviceMapping,
  Caller,
  ImageChanged,
  ImageState,
  ImageView,
  Platform,
} from '@imagemart/contracts';

/** An image row as the repositories read it: the record and whether a live share names anyone. */
export type ImageRow = Omit<CatalogImage, never> & {
  /** A launch permission names at least one account whose share is not rejected. */
  shared: boolean;
};

export const isAdmin = (caller: Caller | null): boolean => caller?.roles.includes('admin') ?? false;

export function toImageView(row: ImageRow, viewer: Caller | null): ImageView {
  const ownerView = viewer !== null && (viewer.accountId === row.ownerId || isAdmin(viewer));
  return {
    imageId: row.id,
    name: row.name,
    description: row.description,
    version: row.version,
    ownerId: row.ownerId,
    architecture: row.architecture as Architecture,
    virtualizationType: row.virtualizationType as ImageView['virtualizationType'],
    rootDeviceType: row.rootDeviceType as ImageView['rootDeviceType'],
    rootDeviceName: row.rootDeviceName,
    blockDeviceMappings: row.blockDeviceMappings as BlockDeviceMapping[],
    kernelId: row.kernelId,
    ramdiskId: row.ramdiskId,
    platform: row.platform as Platform,
    platformDetails: row.platformDetails,
    productCodes: row.productCodes,
    pricingType: row.productCodes.length > 0 ? 'paid' : 'free',
    visibility: row.isPublic ? 'public' : row.shared ? 'shared' : 'private',
    state: row.state as ImageState,
    stateReason: row.stateReasonCode ? { code: row.stateReasonCode, message: row.stateReasonMessage ?? '' } : null,
    creationDate: row.createdAt.toISOString(),
    deregisteredAt: row.deregisteredAt?.toISOString() ?? null,
    manifestLocation: ownerView ? row.manifestLocation : null,
    imageSize: row.imageSize === null ? null : Number(row.imageSize),
    listingId: row.listingId,
    sourceImageId: row.sourceImageId,
    launchCount: Number(row.launchCount),
    revision: row.revision,
  };
}

/** The `catalog.image.changed` payload (and the answer to `catalog.image.internal-get`). */
export function toImageChanged(row: Pick<CatalogImage, 'id' | 'ownerId' | 'state' | 'productCodes' | 'revision'>): ImageChanged {
  return {
    imageId: row.id,
    ownerId: row.ownerId,
    state: row.state as ImageState,
    productCodes: row.productCodes,
    revision: row.revision,
  };
}
