import { Injectable } from '@nestjs/common';
import { Prisma, PrismaClient, withPrismaErrors, type CatalogInstance, type CatalogReservation } from '@imagemart/database';
import type { InstanceRow } from './instance.view.js';

export type Tx = Prisma.TransactionClient | PrismaClient;

export interface NewInstance {
  id: string;
  launchIndex: number;
  imageId: string;
  sellerId: string;
  productCode: string | null;
  instanceType: string;
  manifestLocation: string | null;
}

export interface NewReservation {
  id: string;
  accountId: string;
  clientToken: string | null;
  requestDigest: string;
  imageId: string;
  instanceType: string;
  instanceCount: number;
}

export interface InstanceListQuery {
  accountId: string;
  states?: string[];
  imageIds?: string[];
  instanceTypes?: string[];
  after?: { createdAt: Date; id: string };
  limit: number;
}

/** Key space of the per-account launch lock (pg_advisory_xact_lock's first key). */
const LAUNCH_LOCK_CLASS = 0x696e73; // "ins"

const withClientToken = { reservation: { select: { clientToken: true } } } as const;
type WithReservation = CatalogInstance & { reservation: { clientToken: string | null } };
const toRow = ({ reservation, ...instance }: WithReservation): InstanceRow => ({ ...instance, clientToken: reservation.clientToken });

/** Instances and their reservations in the catalog schema; no business rules here. */
@Injectable()
export class InstancesRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * Serializes the launches of one account until the transaction ends, so that counting its
   * live instances and inserting new ones cannot interleave with another launch of the account.
   */
  async lockAccount(accountId: string, tx: Prisma.TransactionClient): Promise<void> {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${LAUNCH_LOCK_CLASS}::int, hashtext(${accountId}))`;
  }

  findReservation(id: string, tx: Tx = this.prisma): Promise<CatalogReservation | null> {
    return tx.catalogReservation.findUnique({ where: { id } });
  }

  findReservationByToken(accountId: string, clientToken: string, tx: Tx = this.prisma): Promise<CatalogReservation | null> {
    return tx.catalogReservation.findUnique({ where: { accountId_clientToken: { accountId, clientToken } } });
  }

  async instancesOf(reservationId: string, tx: Tx = this.prisma): Promise<InstanceRow[]> {
    const rows = await tx.catalogInstance.findMany({ where: { reservationId }, orderBy: { launchIndex: 'asc' }, include: withClientToken });
    return rows.map(toRow);
  }

  /** Pending and running instances of an account: what its running-instance limit counts. */
  countLive(accountId: string, tx: Tx = this.prisma): Promise<number> {
    return tx.catalogInstance.count({ where: { accountId, state: { in: ['pending', 'running'] } } });
  }

  /** One reservation and its instances, all pending, created at `now`; in launch index order. */
  async create(reservation: NewReservation, instances: NewInstance[], now: Date, reason: { code: string; message: string }, tx: Prisma.TransactionClient): Promise<CatalogInstance[]> {
    await withPrismaErrors(() => tx.catalogReservation.create({ data: { ...reservation, createdAt: now } }));
    return withPrismaErrors(() =>
      tx.catalogInstance.createManyAndReturn({
        data: instances.map((i) => ({
          ...i,
          reservationId: reservation.id,
          accountId: reservation.accountId,
          state: 'pending',
          stateReasonCode: reason.code,
          stateReasonMessage: reason.message,
          stateChangedAt: now,
          revision: 1,
          createdAt: now,
        })),
      }),
    ).then((rows) => rows.sort((a, b) => a.launchIndex - b.launchIndex));
  }

  async findOwned(accountId: string, id: string, tx: Tx = this.prisma): Promise<InstanceRow | null> {
    const row = await tx.catalogInstance.findFirst({ where: { id, accountId }, include: withClientToken });
    return row ? toRow(row) : null;
  }

  findById(id: string, tx: Tx = this.prisma): Promise<CatalogInstance | null> {
    return tx.catalogInstance.findUnique({ where: { id } });
  }

  /** Locks the instance row for the rest of the transaction. */
  async lock(id: string, tx: Prisma.TransactionClient): Promise<CatalogInstance | null> {
    const rows = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM "catalog"."instance" WHERE id = ${id} FOR UPDATE`;
    if (!rows[0]) return null;
    return tx.catalogInstance.findUnique({ where: { id } });
  }

  /** Applies a change and counts one revision more. */
  update(id: string, data: Prisma.CatalogInstanceUncheckedUpdateInput, tx: Tx = this.prisma): Promise<CatalogInstance> {
    return withPrismaErrors(() => tx.catalogInstance.update({ where: { id }, data: { ...data, revision: { increment: 1 } } }));
  }

  /** A page of an account's instances, newest first (ties by id, descending). */
  async list(q: InstanceListQuery): Promise<InstanceRow[]> {
    const where: Prisma.CatalogInstanceWhereInput = {
      accountId: q.accountId,
      ...(q.states ? { state: { in: q.states } } : {}),
      ...(q.imageIds ? { imageId: { in: q.imageIds } } : {}),
      ...(q.instanceTypes ? { instanceType: { in: q.instanceTypes } } : {}),
      ...(q.after
        ? { OR: [{ createdAt: { lt: q.after.createdAt } }, { createdAt: q.after.createdAt, id: { lt: q.after.id } }] }
        : {}),
    };
    const rows = await this.prisma.catalogInstance.findMany({
      where,
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: q.limit,
      include: withClientToken,
    });
    return rows.map(toRow);
  }
}
