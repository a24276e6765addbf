import { Injectable } from '@nestjs/common';
import { PrismaClient, type AuditEvent, type Prisma } from '@imagemart/database';
import { requestContext } from '@imagemart/observability';

export interface AuditEntry {
  actorId: string | null;
  action: string;
  resourceType: string;
  resourceId: string;
  /** The platform's request id (the gateway's). */
  requestId?: string | undefined;
  /**
   * The client's own `X-Request-Id` of that request. Unset: the current request's, when the entry
   * is the current request's (its `requestId`).
   */
  clientRequestId?: string | undefined;
  details?: Record<string, unknown>;
}

type Tx = Prisma.TransactionClient | PrismaClient;

/** Writes the audit trail. Called inside the transaction of the change it records. */
@Injectable()
export class AuditRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async record(entry: AuditEntry, tx: Tx = this.prisma): Promise<void> {
    const context = requestContext.get();
    const clientRequestId =
      entry.clientRequestId ?? (entry.requestId !== undefined && entry.requestId === context?.requestId ? context.clientRequestId : undefined);
    await tx.auditEvent.create({
      data: {
        actorId: entry.actorId,
        action: entry.action,
        resourceType: entry.resourceType,
        resourceId: entry.resourceId,
        requestId: entry.requestId ?? null,
        clientRequestId: clientRequestId ?? null,
        details: (entry.details ?? {}) as Prisma.InputJsonValue,
      },
    });
  }
}

export interface AuditFilter {
  actorId?: string | undefined;
  action?: string | undefined;
  resourceType?: string | undefined;
  resourceId?: string | undefined;
}

export interface AuditCursor {
  createdAt: Date;
  id: string;
}

/** Reads the audit trail: newest first, a stable order ((createdAt, id) is unique). */
@Injectable()
export class AuditReader {
  constructor(private readonly prisma: PrismaClient) {}

  list(filter: AuditFilter, limit: number, before?: AuditCursor): Promise<AuditEvent[]> {
    const where: Prisma.AuditEventWhereInput = {
      ...(filter.actorId ? { actorId: filter.actorId } : {}),
      ...(filter.action ? { action: filter.action } : {}),
      ...(filter.resourceType ? { resourceType: filter.resourceType } : {}),
      ...(filter.resourceId ? { resourceId: filter.resourceId } : {}),
      ...(before
        ? { OR: [{ createdAt: { lt: before.createdAt } }, { createdAt: before.createdAt, id: { lt: before.id } }] }
        : {}),
    };
    return this.prisma.auditEvent.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: limit });
  }
}
