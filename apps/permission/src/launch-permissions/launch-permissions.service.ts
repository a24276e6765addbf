import { Injectable } from '@nestjs/common';
import { PrismaClient, publishDomainEvent, type PermissionLaunchGrant, type Prisma } from '@imagemart/database';
import {
  DomainEventType,
  ErrorCode,
  type Caller,
  type LaunchPermissionChanged,
  type LaunchPermissionItem,
  type LaunchPermissionItemInput,
  type LaunchPermissionView,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import { AuditRepository } from '../audit/audit.repository.js';
import { DecisionInvalidationBus } from '../decision/decision-invalidation.bus.js';
import { ImageAccess } from './image.access.js';
import { parseLaunchPermissionItems } from './launch-permission.items.js';
import { LaunchPermissionsRepository, type LaunchSetting } from './launch-permissions.repository.js';

export function toLaunchPermissionView(
  imageId: string,
  setting: LaunchSetting,
  grants: Pick<PermissionLaunchGrant, 'accountId'>[],
): LaunchPermissionView {
  const items: LaunchPermissionItem[] = setting.isPublic ? [{ group: 'all' }] : [];
  for (const g of [...grants].sort((a, b) => a.accountId.localeCompare(b.accountId))) items.push({ userId: g.accountId });
  return { imageId, launchPermissions: items };
}

const describe = (accountIds: string[], all: boolean): LaunchPermissionItem[] => [
  ...(all ? [{ group: 'all' as const }] : []),
  ...accountIds.map((userId) => ({ userId })),
];

/**
 * An image's launch permissions, as EC2's launchPermission attribute: read, modified (add and
 * remove in one request, all or nothing) and reset by the image's owner or an admin. Adding what
 * is there and removing what is not change nothing. Every change bumps the image's revision,
 * publishes `permission.launch-permission.changed` with the full state and writes the audit log,
 * all in one transaction; the launch decision's caches are invalidated once it has committed.
 */
@Injectable()
export class LaunchPermissionsService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly launchPermissions: LaunchPermissionsRepository,
    private readonly access: ImageAccess,
    private readonly audit: AuditRepository,
    private readonly invalidations: DecisionInvalidationBus,
  ) {}

  async get(caller: Caller, imageId: string): Promise<LaunchPermissionView> {
    await this.access.requireOwnerOrAdmin(caller, imageId);
    const [setting, grants] = await Promise.all([
      this.launchPermissions.findSetting(imageId),
      this.launchPermissions.grants(imageId),
    ]);
    return toLaunchPermissionView(imageId, setting, grants);
  }

  async modify(
    caller: Caller,
    imageId: string,
    add: LaunchPermissionItemInput[],
    remove: LaunchPermissionItemInput[],
  ): Promise<LaunchPermissionView> {
    // Every item is checked before the image is even looked at: a bad one changes nothing.
    const toAdd = parseLaunchPermissionItems(add);
    const toRemove = parseLaunchPermissionItems(remove);
    const both = toAdd.accountIds.filter((id) => toRemove.accountIds.includes(id));
    if (both.length > 0 || (toAdd.all && toRemove.all)) {
      const what = both.length > 0 ? `the account ${both[0]}` : 'the group all';
      throw new DomainException(ErrorCode.InvalidParameterValue, `A request cannot both add and remove ${what}.`, [
        { path: 'add', message: `${what} is also in remove` },
      ]);
    }
    const image = await this.access.requireOwnerOrAdmin(caller, imageId);

    const { view, changed } = await this.prisma.$transaction(async (tx) => {
      const setting = await this.launchPermissions.lockSetting(tx, imageId);
      const held = new Set((await this.launchPermissions.grants(imageId, tx)).map((g) => g.accountId));
      // The owner may always launch; a launch permission naming the owner would add nothing.
      const added = toAdd.accountIds.filter((id) => !held.has(id) && id !== image.ownerId);
      const removed = toRemove.accountIds.filter((id) => held.has(id));
      const isPublic = toAdd.all ? true : toRemove.all ? false : setting.isPublic;
      if (added.length === 0 && removed.length === 0 && isPublic === setting.isPublic) {
        return { view: toLaunchPermissionView(imageId, setting, [...held].map((accountId) => ({ accountId }))), changed: false };
      }
      await this.launchPermissions.addGrants(tx, imageId, added);
      await this.launchPermissions.removeGrants(tx, imageId, removed);
      const next = { isPublic, revision: setting.revision + 1 };
      const grants = await this.saveAndPublish(tx, imageId, next);
      await this.audit.record(
        {
          actorId: caller.accountId,
          action: 'launch-permission.modify',
          resourceType: 'image',
          resourceId: imageId,
          requestId: requestContext.requestId(),
          details: {
            added: describe(added, isPublic && !setting.isPublic),
            removed: describe(removed, !isPublic && setting.isPublic),
            revision: next.revision,
          },
        },
        tx,
      );
      return { view: toLaunchPermissionView(imageId, next, grants), changed: true };
    });
    if (changed) await this.invalidations.invalidate('image', imageId);
    return view;
  }

  /** Back to private: no group, no accounts. Resetting a private image changes nothing. */
  async reset(caller: Caller, imageId: string): Promise<LaunchPermissionView> {
    await this.access.requireOwnerOrAdmin(caller, imageId);
    const { view, changed } = await this.prisma.$transaction(async (tx) => {
      const setting = await this.launchPermissions.lockSetting(tx, imageId);
      const held = (await this.launchPermissions.grants(imageId, tx)).map((g) => g.accountId);
      if (!setting.isPublic && held.length === 0) {
        return { view: toLaunchPermissionView(imageId, setting, []), changed: false };
      }
      await this.launchPermissions.removeGrants(tx, imageId);
      const next = { isPublic: false, revision: setting.revision + 1 };
      await this.saveAndPublish(tx, imageId, next);
      await this.audit.record(
        {
          actorId: caller.accountId,
          action: 'launch-permission.reset',
          resourceType: 'image',
          resourceId: imageId,
          requestId: requestContext.requestId(),
          details: { removed: describe(held, setting.isPublic), revision: next.revision },
        },
        tx,
      );
      return { view: toLaunchPermissionView(imageId, next, []), changed: true };
    });
    if (changed) await this.invalidations.invalidate('image', imageId);
    return view;
  }

  /**
   * Stores the image's new setting and publishes its whole launch permission state, inside the
   * transaction that made the change. Returns the grants as they now are.
   */
  async saveAndPublish(tx: Prisma.TransactionClient, imageId: string, setting: LaunchSetting): Promise<PermissionLaunchGrant[]> {
    await this.launchPermissions.saveSetting(tx, imageId, setting);
    const grants = await this.launchPermissions.grants(imageId, tx);
    const payload: LaunchPermissionChanged = {
      imageId,
      public: setting.isPublic,
      grants: grants.map((g) => ({ accountId: g.accountId, shareState: g.shareState })),
      revision: setting.revision,
    };
    await publishDomainEvent(tx, 'permission', {
      type: DomainEventType.launchPermissionChanged,
      payload,
      ...(requestContext.requestId() ? { requestId: requestContext.requestId() } : {}),
    });
    return grants;
  }
}
