import { Injectable } from '@nestjs/common';
import type { AuditEvent } from '@imagemart/database';
import { ErrorCode, type AuditEventView, type ListAuditEventsRequest, type Page } from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { isAdmin } from '../accounts/account.access.js';
import { ImageAccess } from '../launch-permissions/image.access.js';
import { AuditReader, type AuditCursor, type AuditFilter } from './audit.repository.js';

export function toAuditEventView(e: AuditEvent): AuditEventView {
  return {
    id: e.id,
    actorId: e.actorId,
    action: e.action,
    resourceType: e.resourceType,
    resourceId: e.resourceId,
    requestId: e.requestId,
    clientRequestId: e.clientRequestId,
    details: e.details,
    createdAt: e.createdAt.toISOString(),
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const encodeCursor = (e: AuditEvent) => Buffer.from(`${e.createdAt.toISOString()}|${e.id}`).toString('base64url');

function decodeCursor(token: string): AuditCursor {
  const [iso, id] = Buffer.from(token, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (!id || !UUID.test(id) || Number.isNaN(createdAt.getTime())) {
    throw new DomainException(ErrorCode.InvalidPaginationToken, 'The page cursor is not valid.', [
      { path: 'cursor', message: 'not a cursor this API returned' },
    ]);
  }
  return { createdAt, id };
}

/**
 * The audit log, read: admins read all of it, with any filter; an image's owner reads the events
 * of that image (`imageId`). Anyone else is refused: `UnauthorizedOperation`, or
 * `InvalidAMIID.NotFound` for an image they cannot see.
 */
@Injectable()
export class AuditService {
  constructor(
    private readonly reader: AuditReader,
    private readonly access: ImageAccess,
  ) {}

  async list(req: ListAuditEventsRequest): Promise<Page<AuditEventView>> {
    const { caller, imageId, limit, cursor } = req;
    if (imageId && (req.resourceType || req.resourceId)) {
      throw new DomainException(ErrorCode.InvalidParameterValue, 'imageId cannot be combined with resourceType or resourceId.', [
        { path: 'imageId', message: 'stands for resourceType=image&resourceId=<imageId>' },
      ]);
    }
    if (!isAdmin(caller)) {
      if (!imageId) {
        throw new DomainException(
          ErrorCode.UnauthorizedOperation,
          'You are not authorized to read the audit log. An image owner may read the events of an image: pass imageId.',
        );
      }
      await this.access.requireOwnerOrAdmin(caller, imageId, ErrorCode.UnauthorizedOperation);
    }
    const filter: AuditFilter = imageId
      ? { actorId: req.actorId, action: req.action, resourceType: 'image', resourceId: imageId }
      : { actorId: req.actorId, action: req.action, resourceType: req.resourceType, resourceId: req.resourceId };
    const rows = await this.reader.list(filter, limit + 1, cursor ? decodeCursor(cursor) : undefined);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { items: page.map(toAuditEventView), nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
  }
}
