import { RpcException } from '@nestjs/microservices';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { ErrorCode, type ErrorBody } from '@imagemart/contracts';
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
  const client = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
  // Every query, raw ones and those inside transactions included: text PostgreSQL cannot store is
  // the caller's 400, never a 500 (see InvalidTextValue). Only the type of the client changes
  // (an extended client is a PrismaClient with the same methods); nothing else is translated here.
  const prisma = client.$extends({
    query: {
      async $allOperations({ args, query }) {
        try {
          return (await query(args)) as unknown;
        } catch (err) {
          throw invalidTextValueOf(err) ?? err;
        }
      },
    },
  }) as unknown as PrismaClient;
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
 * A value PostgreSQL cannot store as text: SQLSTATE 22021 (character_not_in_repertoire: a NUL
 * byte, an invalid UTF-8 sequence) or 22P05 (untranslatable_character). It is the input's fault,
 * whichever query met it, so it is an `RpcException` carrying the body of a 400
 * `InvalidParameterValue`: a service's handler that meets it answers the gateway with that error
 * instead of an internal one. The contracts' `text()` refuses such values at the edge; this is the
 * net under every field that is not (yet) built on it.
 */
export class InvalidTextValue extends RpcException {
  override readonly name = 'InvalidTextValue';
  constructor(options?: ErrorOptions) {
    const body: ErrorBody = {
      code: ErrorCode.InvalidParameterValue,
      detail: 'A text value holds a character that cannot be stored (a NUL byte, or a character that is not valid Unicode).',
    };
    super(body);
    if (options?.cause !== undefined) Object.defineProperty(this, 'cause', { value: options.cause, enumerable: false });
  }

  get body(): ErrorBody {
    return this.getError() as ErrorBody;
  }
}

const TEXT_VALUE_STATES = new Set(['22021', '22P05']);

/** The SQLSTATE of a database error: from Prisma through the driver adapter, or from `pg` itself. */
function sqlStateOf(err: unknown): string | undefined {
  if (err instanceof Prisma.PrismaClientKnownRequestError) {
    const cause = (err.meta?.['driverAdapterError'] as { cause?: { originalCode?: unknown; code?: unknown } } | undefined)?.cause;
    const code = cause?.originalCode ?? cause?.code;
    return typeof code === 'string' ? code : undefined;
  }
  if (err instanceof pg.DatabaseError) return err.code;
  return undefined;
}

/** The `InvalidTextValue` a database error stands for, if it is one. */
export function invalidTextValueOf(err: unknown): InvalidTextValue | undefined {
  if (err instanceof InvalidTextValue) return err;
  const state = sqlStateOf(err);
  return state !== undefined && TEXT_VALUE_STATES.has(state) ? new InvalidTextValue({ cause: err }) : undefined;
}

/**
 * Rethrows a Prisma error as one of this library's types, so repositories expose conflicts,
 * misses and unstorable text without leaking Prisma's error classes; anything else is rethrown
 * unchanged.
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
  throw invalidTextValueOf(err) ?? err;
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
