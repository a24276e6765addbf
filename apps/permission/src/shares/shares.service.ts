import { Injectable } from '@nestjs/common';
import { PrismaClient } from '@imagemart/database';
import {
  ErrorCode,
  type Caller,
  type Page,
  type ShareState,
  type SharedImageView,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import { AuditRepository } from '../audit/audit.repository.js';
import { ImageProjectionService, imageNotFound } from '../images/image-projection.service.js';
import { LaunchPermissionsService } from '../launch-permissions/launch-permissions.service.js';
import {
  LaunchPermissionsRepository,
  type SharedImageCursor,
  type SharedImageRow,
} from '../launch-permissions/launch-permissions.repository.js';

function toSharedImageView(row: SharedImageRow): SharedImageView {
  return {
    imageId: row.image_id,
    ownerId: row.owner_id,
    imageState: row.image_state,
    productCodes: row.product_codes ?? [],
    state: row.share_state,
    sharedAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

const encodeCursor = (row: SharedImageRow) =>
  Buffer.from(`${row.created_at.toISOString()}|${row.image_id}`).toString('base64url');

function decodeCursor(token: string): SharedImageCursor {
  const [iso, imageId] = Buffer.from(token, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (!imageId || !/^ami-[0-9a-f]{17}$/.test(imageId) || Number.isNaN(createdAt.getTime())) {
    throw new DomainException(ErrorCode.InvalidPaginationToken, 'The page cursor is not valid.', [
      { path: 'cursor', message: 'not a cursor this API returned' },
    ]);
  }
  return { createdAt, imageId };
}

/**
 * Shares, as Glance's image members: an image whose launch permission names an account is shared
 * with it, `pending` until the account accepts or rejects it. The state is the recipient's
 * bookkeeping only; the launch permission holds in every state. Removing the permission removes
 * the share; granting it again starts over at `pending`.
 */
@Injectable()
export class SharesService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly launchPermissions: LaunchPermissionsRepository,
    private readonly launchPermissionsService: LaunchPermissionsService,
    private readonly images: ImageProjectionService,
    private readonly audit: AuditRepository,
  ) {}

  async list(caller: Caller, state: ShareState | undefined, limit: number, cursor?: string): Promise<Page<SharedImageView>> {
    const rows = await this.launchPermissions.listSharedWith(
      caller.accountId,
      state,
      limit + 1,
      cursor ? decodeCursor(cursor) : undefined,
    );
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { items: page.map(toSharedImageView), nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
  }

  /**
   * Accept or reject an image shared with the caller. Answering the same again changes nothing.
   * Only an available image's share can be answered: the catalog shows another account's image
   * only while it is available, so a pending, failed or deregistered one is the same 404 as there
   * (a pending image is checked with the catalog first: the event making it available may be on
   * its way).
   */
  async respond(caller: Caller, imageId: string, state: 'accepted' | 'rejected'): Promise<SharedImageView> {
    const image = await this.images.findCurrent(imageId);
    if (!image || image.state !== 'available') throw imageNotFound(imageId);
    await this.prisma.$transaction(async (tx) => {
      const setting = await this.launchPermissions.lockSetting(tx, imageId);
      const grant = await this.launchPermissions.findGrant(imageId, caller.accountId, tx);
      // Not shared with the caller: as far as they are concerned, there is no such image.
      if (!grant) throw imageNotFound(imageId);
      if (grant.shareState === state) return;
      await this.launchPermissions.setShareState(tx, imageId, caller.accountId, state);
      const next = { isPublic: setting.isPublic, revision: setting.revision + 1 };
      await this.launchPermissionsService.saveAndPublish(tx, imageId, next);
      await this.audit.record(
        {
          actorId: caller.accountId,
          action: state === 'accepted' ? 'share.accept' : 'share.reject',
          resourceType: 'image',
          resourceId: imageId,
          requestId: requestContext.requestId(),
          details: { accountId: caller.accountId, from: grant.shareState, to: state, revision: next.revision },
        },
        tx,
      );
    });
    const grant = await this.launchPermissions.findGrant(imageId, caller.accountId);
    if (!grant) throw imageNotFound(imageId); // removed by the owner a moment ago
    return {
      imageId,
      ownerId: image.ownerId,
      imageState: image.state,
      productCodes: image.productCodes,
      state: grant.shareState,
      sharedAt: grant.createdAt.toISOString(),
      updatedAt: grant.updatedAt.toISOString(),
    };
  }
}
