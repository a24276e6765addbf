import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { Prisma, PrismaClient } from './generated/prisma/client.js';

export interface PrismaClientSettings {
  /** Connections this process may hold open (pg's default: 10). Size it so replicas × pool fits max_connections. */
  poolSize?: number;
  /** Give up on a new connection after this long instead of waiting for ever. */
  connectionTimeoutMs?: number;
  /** Shown in pg_stat_activity, so an operator can tell the services apart. */
  applicationName?: string;
}

const pools = new WeakMap<PrismaClient, pg.Pool>();

/** The generated Prisma client on `pg` through the driver adapter (no native query engine). */
export function createPrismaClient(databaseUrl: string, settings: PrismaClientSettings = {}): PrismaClient {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: settings.poolSize ?? 10,
    connectionTimeoutMillis: settings.connectionTimeoutMs ?? 5_000,
    ...(settings.applicationName ? { application_name: settings.applicationName } : {}),
  });
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
  pools.set(prisma, pool);
  return prisma;
}

/**
 * The `pg` pool under a client made by {@link createPrismaClient} (the same connections), for the
 * few statements on a hot path where Prisma's own work per call shows: a raw query through Prisma
 * costs about twice the CPU of the same query on `pg` (docs/launches.md). Everything else goes
 * through Prisma.
 */
export function pgPoolOf(prisma: PrismaClient): pg.Pool {
  const pool = pools.get(prisma);
  if (!pool) throw new Error('this Prisma client was not made by createPrismaClient: it has no pg pool');
  return pool;
}

/**
 * A write hit a unique constraint (Prisma P2002). `fields` names the columns when Prisma reports
 * them, `constraint` the index when the driver adapter reports that instead.
 */
export class UniqueViolation extends Error {
  override readonly name = 'UniqueViolation';
  constructor(
    readonly fields: string[],
    readonly constraint?: string,
    options?: ErrorOptions,
  ) {
    const what = fields.length ? `(${fields.join(', ')})` : (constraint ?? 'a unique constraint');
    super(`Unique constraint violated on ${what}`, options);
  }
}

/** The record an update, delete or `…OrThrow` read needed does not exist (Prisma P2025). */
export class RecordNotFound extends Error {
  override readonly name = 'RecordNotFound';
  constructor(message = 'Record not found', options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * Rethrows a Prisma error as one of this library's types, so repositories expose conflicts and
 * misses without leaking Prisma's error classes; anything else is rethrown unchanged.
 *
 *     try { return await tx.account.create({ data }); } catch (err) { translatePrismaError(err); }
 */
export function translatePrismaError(err: unknown): never {
  if (err instanceof Prisma.PrismaClientKnownRequestError) {
    if (err.code === 'P2002') {
      const { fields, constraint } = uniqueTarget(err.meta);
      throw new UniqueViolation(fields, constraint, { cause: err });
    }
    if (err.code === 'P2025') throw new RecordNotFound(notFoundMessage(err.meta), { cause: err });
  }
  throw err;
}

/** Runs `work` and translates its Prisma errors (see {@link translatePrismaError}). */
export async function withPrismaErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    translatePrismaError(err);
  }
}

// The native engine put the fields in `meta.target`; through the driver adapter the details come in
// `meta.driverAdapterError.cause.constraint` as `{ fields }` or `{ index }`. Read all three.
function uniqueTarget(meta: Record<string, unknown> | undefined): { fields: string[]; constraint?: string } {
  const target = meta?.['target'];
  if (Array.isArray(target)) return { fields: target.map(String) };
  const adapterConstraint = (
    meta?.['driverAdapterError'] as { cause?: { constraint?: Record<string, unknown> } }
  )?.cause?.constraint;
  const fields = adapterConstraint?.['fields'];
  const index = adapterConstraint?.['index'] ?? (typeof target === 'string' ? target : undefined);
  return {
    fields: Array.isArray(fields) ? fields.map(String) : [],
    ...(typeof index === 'string' ? { constraint: index } : {}),
  };
}

function notFoundMessage(meta: Record<string, unknown> | undefined): string {
  const model = typeof meta?.['modelName'] === 'string' ? meta['modelName'] : 'Record';
  const cause = typeof meta?.['cause'] === 'string' ? `: ${meta['cause']}` : '';
  return `${model} not found${cause}`;
}
