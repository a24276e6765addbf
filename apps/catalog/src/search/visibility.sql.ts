import { Prisma } from '@imagemart/database';

/**
 * The visibility rules as SQL over `catalog.image i` and the projection of launch permissions.
 * Every list, count and lookup goes through one of these, so another account's private image is
 * the same as a missing one everywhere.
 */

const grantOf = (accountId: string, states: readonly string[]) => Prisma.sql`EXISTS (
  SELECT 1 FROM "catalog"."launch_grant" g
   WHERE g.image_id = i.id AND g.account_id = ${accountId} AND g.share_state = ANY(${[...states]}::text[]))`;

/**
 * What a list shows by default: anonymous callers public available images; a signed-in caller
 * also his own (in any state but deregistered) and the available images shared with him that he
 * accepted.
 */
export function listedBy(accountId: string | null): Prisma.Sql {
  if (accountId === null) return Prisma.sql`(i.is_public AND i.state = 'available')`;
  return Prisma.sql`(i.state <> 'deregistered' AND (i.owner_id = ${accountId}
    OR (i.state = 'available' AND (i.is_public OR ${grantOf(accountId, ['accepted'])}))))`;
}

/**
 * The same rules as {@link listedBy} and the `executable-by` ones, as branches whose union is the
 * visible set, so that each branch is one indexed read (public and available: the partial
 * indexes; own: the owner index; shared: the caller's grants) instead of one OR the planner can
 * only check row by row. Branches may overlap (an own public image): a union removes duplicates.
 */
export type VisibilityBranches = Prisma.Sql[];

const PUBLIC_AVAILABLE = Prisma.sql`(i.is_public AND i.state = 'available')`;
const ownNotDeregistered = (accountId: string) => Prisma.sql`(i.owner_id = ${accountId} AND i.state <> 'deregistered')`;
const grantedAvailable = (accountId: string, states: readonly string[]) => Prisma.sql`(i.state = 'available' AND i.id IN (
  SELECT g.image_id FROM "catalog"."launch_grant" g WHERE g.account_id = ${accountId} AND g.share_state = ANY(${[...states]}::text[])))`;

export function listedByBranches(accountId: string | null): VisibilityBranches {
  if (accountId === null) return [PUBLIC_AVAILABLE];
  return [PUBLIC_AVAILABLE, ownNotDeregistered(accountId), grantedAvailable(accountId, ['accepted'])];
}

export function executableBySelfBranches(accountId: string): VisibilityBranches {
  return [ownNotDeregistered(accountId), grantedAvailable(accountId, ['pending', 'accepted'])];
}

export function executableByAllBranches(accountId: string | null): VisibilityBranches {
  if (accountId === null) return [PUBLIC_AVAILABLE];
  return [PUBLIC_AVAILABLE, Prisma.sql`(i.is_public AND ${ownNotDeregistered(accountId)})`];
}

/** `executable-by=self`: his own images and those a launch permission names him in (pending or accepted). */
export function executableBySelf(accountId: string): Prisma.Sql {
  return Prisma.sql`(i.state <> 'deregistered' AND (i.owner_id = ${accountId}
    OR (i.state = 'available' AND ${grantOf(accountId, ['pending', 'accepted'])})))`;
}

/** `executable-by=all`: public images (his own public ones in any state but deregistered). */
export function executableByAll(accountId: string | null): Prisma.Sql {
  if (accountId === null) return Prisma.sql`(i.is_public AND i.state = 'available')`;
  return Prisma.sql`(i.is_public AND i.state <> 'deregistered' AND (i.owner_id = ${accountId} OR i.state = 'available'))`;
}

/**
 * Who may read one image by id: the owner (deregistered included), anyone for a public available
 * image, an account a launch permission names (pending or accepted) for an available one.
 */
export function readableBy(accountId: string | null): Prisma.Sql {
  if (accountId === null) return Prisma.sql`(i.is_public AND i.state = 'available')`;
  return Prisma.sql`(i.owner_id = ${accountId}
    OR (i.state = 'available' AND (i.is_public OR ${grantOf(accountId, ['pending', 'accepted'])})))`;
}

/** The columns of an image row (see ImageRow), for raw reads. */
export const IMAGE_COLUMNS = Prisma.sql`
  i.id, i.owner_id AS "ownerId", i.name, i.description, i.version, i.architecture,
  i.virtualization_type AS "virtualizationType", i.root_device_type AS "rootDeviceType",
  i.root_device_name AS "rootDeviceName", i.block_device_mappings AS "blockDeviceMappings",
  i.kernel_id AS "kernelId", i.ramdisk_id AS "ramdiskId", i.platform, i.platform_details AS "platformDetails",
  i.product_codes AS "productCodes", i.listing_id AS "listingId", i.source_image_id AS "sourceImageId",
  i.state, i.state_reason_code AS "stateReasonCode", i.state_reason_message AS "stateReasonMessage",
  i.manifest_location AS "manifestLocation", i.image_size AS "imageSize", i.revision,
  i.is_public AS "isPublic", i.lp_revision AS "lpRevision", i.launch_count AS "launchCount",
  i.created_at AS "createdAt", i.updated_at AS "updatedAt", i.deregistered_at AS "deregisteredAt",
  -- A probe of the grant index per row (LIMIT keeps the planner from hashing the whole table).
  (SELECT TRUE FROM "catalog"."launch_grant" sg WHERE sg.image_id = i.id AND sg.share_state <> 'rejected' LIMIT 1) IS NOT NULL AS "shared"`;
