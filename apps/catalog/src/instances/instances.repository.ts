import { Injectable } from '@nestjs/common';
import type pg from 'pg';
import { Prisma, PrismaClient, pgPoolOf, type CatalogInstance, type CatalogReservation, type OutboxRecord } from '@imagemart/database';
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

/** What catalog.launch_reserve did: wrote the launch, found an earlier one, or refused it. */
export type ReserveOutcome =
  | { outcome: 'created'; live: number }
  | { outcome: 'replay'; reservationId: string }
  | { outcome: 'limit'; live: number }
  | { outcome: 'unavailable' };

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

/** A reservation row as the database's JSON functions take it. */
function reservationRecord(r: CatalogReservation) {
  return {
    id: r.id,
    account_id: r.accountId,
    client_token: r.clientToken,
    request_digest: r.requestDigest,
    image_id: r.imageId,
    instance_type: r.instanceType,
    instance_count: r.instanceCount,
    created_at: iso(r.createdAt),
    updated_at: iso(r.updatedAt),
  };
}

/** An instance row as the database's JSON functions take it. */
function instanceRecord(i: CatalogInstance) {
  return {
    id: i.id,
    reservation_id: i.reservationId,
    launch_index: i.launchIndex,
    account_id: i.accountId,
    image_id: i.imageId,
    seller_id: i.sellerId,
    product_code: i.productCode,
    instance_type: i.instanceType,
    state: i.state,
    state_reason_code: i.stateReasonCode,
    state_reason_message: i.stateReasonMessage,
    state_changed_at: iso(i.stateChangedAt),
    running_at: iso(i.runningAt),
    stopped_at: iso(i.stoppedAt),
    manifest_location: i.manifestLocation,
    revision: i.revision,
    created_at: iso(i.createdAt),
    updated_at: iso(i.updatedAt),
  };
}

/** A catalog.instance row as CatalogInstance, for the statements on `pg`. */
const INSTANCE_COLUMNS = `id, reservation_id AS "reservationId", launch_index AS "launchIndex", account_id AS "accountId",
  image_id AS "imageId", seller_id AS "sellerId", product_code AS "productCode", instance_type AS "instanceType", state,
  state_reason_code AS "stateReasonCode", state_reason_message AS "stateReasonMessage", state_changed_at AS "stateChangedAt",
  running_at AS "runningAt", stopped_at AS "stoppedAt", manifest_location AS "manifestLocation", revision,
  created_at AS "createdAt", updated_at AS "updatedAt"`;

const withClientToken = { reservation: { select: { clientToken: true } } } as const;
type WithReservation = CatalogInstance & { reservation: { clientToken: string | null } };
const toRow = ({ reservation, ...instance }: WithReservation): InstanceRow => ({ ...instance, clientToken: reservation.clientToken });

/**
 * Instances and their reservations in the catalog schema; no business rules here. The statements
 * every launch runs (the launch, the host's state changes and their reads) go to the client's `pg`
 * pool directly: Prisma's own work per call was a third of the catalog's CPU per launch.
 */
@Injectable()
export class InstancesRepository {
  private readonly pool: pg.Pool;

  constructor(private readonly prisma: PrismaClient) {
    this.pool = pgPoolOf(prisma);
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

  /**
   * A whole launch in one statement (catalog.launch_reserve): under the account's launch lock,
   * answers an earlier reservation with the same id or client token; else checks the running
   * limit and that the image is still available, and writes the reservation, its instances, the
   * outbox rows and the image's launch count. Nothing is written unless the outcome is `created`.
   */
  async reserve(
    reservation: CatalogReservation,
    instances: readonly CatalogInstance[],
    events: readonly OutboxRecord[],
    runningLimit: number,
  ): Promise<ReserveOutcome> {
    const { rows } = await this.pool.query<{ outcome: string; live: string; reservation_id: string | null }>(
      `SELECT outcome, live, reservation_id FROM "catalog"."launch_reserve"($1, $2::jsonb, $3::jsonb, $4::jsonb, $5::int)`,
      [
        reservation.accountId,
        JSON.stringify(reservationRecord(reservation)),
        JSON.stringify(instances.map(instanceRecord)),
        JSON.stringify(events),
        runningLimit,
      ],
    );
    const row = rows[0];
    switch (row?.outcome) {
      case 'created':
        return { outcome: 'created', live: Number(row.live) };
      case 'replay':
        return { outcome: 'replay', reservationId: row.reservation_id ?? '' };
      case 'limit':
        return { outcome: 'limit', live: Number(row.live) };
      case 'unavailable':
        return { outcome: 'unavailable' };
      default:
        throw new Error(`catalog.launch_reserve answered ${JSON.stringify(row)}`);
    }
  }

  /**
   * Writes `next` (the whole next version of an instance) and its outbox rows in one statement,
   * if the stored row is still at `expectedRevision`. False: someone changed it first.
   */
  async change(next: CatalogInstance, expectedRevision: number, events: readonly OutboxRecord[]): Promise<boolean> {
    const { rows } = await this.pool.query<{ changed: boolean }>(`SELECT "catalog"."instance_change"($1::jsonb, $2::int, $3::jsonb) AS changed`, [
      JSON.stringify(instanceRecord(next)),
      expectedRevision,
      JSON.stringify(events),
    ]);
    return rows[0]?.changed === true;
  }

  async findOwned(accountId: string, id: string, tx: Tx = this.prisma): Promise<InstanceRow | null> {
    const row = await tx.catalogInstance.findFirst({ where: { id, accountId }, include: withClientToken });
    return row ? toRow(row) : null;
  }

  async findById(id: string): Promise<CatalogInstance | null> {
    const { rows } = await this.pool.query<CatalogInstance>(`SELECT ${INSTANCE_COLUMNS} FROM "catalog"."instance" WHERE id = $1`, [id]);
    return rows[0] ?? null;
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
