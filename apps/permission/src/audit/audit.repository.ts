import { Injectable } from '@nestjs/common';
import { PrismaClient, type Prisma } from '@imagemart/database';

export interface AuditEntry {
  actorId: string | null;
  action: string;
  resourceType: string;
  resourceId: string;
  requestId?: string | undefined;
  details?: Record<string, unknown>;
}

type Tx = Prisma.TransactionClient | PrismaClient;

/** Writes the audit trail. Called inside the transaction of the change it records. */
@Injectable()
export class AuditRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async record(entry: AuditEntry, tx: Tx = this.prisma): Promise<void> {
    await tx.auditEvent.create({
      data: {
        actorId: entry.actorId,
        action: entry.action,
        resourceType: entry.resourceType,
        resourceId: entry.resourceId,
        requestId: entry.requestId ?? null,
        details: (entry.details ?? {}) as Prisma.InputJsonValue,
      },
    });
  }
}
