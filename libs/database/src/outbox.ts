import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  EVENT_ROUTES,
  type DomainEventJob,
  type DomainEventPayload,
  type DomainEventType,
} from '@imagemart/contracts';
import type pg from 'pg';
import { Prisma, type PrismaClient } from './generated/prisma/client.js';
import { pgPoolOf } from './prisma.js';

/**
 * The transactional outbox: a service writes an event in the same transaction as the data it
 * describes, and a relay moves committed events to their BullMQ queue. An event is thus published
 * if and only if its transaction committed, at least once; the job id (= event id) makes the
 * "at least" harmless, since BullMQ ignores a job whose id it already holds.
 */

/** Each service's outbox lives in its own schema. The table names are fixed here, never taken from input. */
const OUTBOX_TABLE = {
  permission: '"permission"."outbox_event"',
  catalog: '"catalog"."outbox_event"',
  billing: '"billing"."outbox_event"',
  bundling: '"bundling"."outbox_event"',
} as const;

export type OutboxSchema = keyof typeof OUTBOX_TABLE;
export const OUTBOX_SCHEMAS = Object.keys(OUTBOX_TABLE) as OutboxSchema[];

function outboxTableName(schema: OutboxSchema): string {
  if (!Object.hasOwn(OUTBOX_TABLE, schema)) throw new Error(`Unknown outbox schema: ${String(schema)}`);
  return OUTBOX_TABLE[schema];
}

function outboxTable(schema: OutboxSchema): Prisma.Sql {
  return Prisma.raw(outboxTableName(schema));
}

export interface NewOutboxEvent {
  /** Defaults to a fresh UUID. Pass one to make the event itself idempotent. */
  id?: string;
  /** Dotted, past tense: `catalog.image.available`. Becomes the BullMQ job name. */
  type: string;
  /** The BullMQ queue to deliver to (a `QueueName` from contracts). */
  queue: string;
  payload: unknown;
  requestId?: string;
}

/** Anything that can run raw SQL: the `tx` of `prisma.$transaction(async (tx) => …)`, or the client. */
export type OutboxWriter = Pick<Prisma.TransactionClient, '$executeRaw'>;

/**
 * Appends an event to `schema`'s outbox. Call it with the `tx` of the transaction that writes the
 * data the event is about. Returns the event id.
 */
export async function appendOutboxEvent(
  tx: OutboxWriter,
  schema: OutboxSchema,
  event: NewOutboxEvent,
): Promise<string> {
  const id = event.id ?? randomUUID();
  // clock_timestamp(), not now(): events of one transaction keep the order they were written in.
  await tx.$executeRaw`
    INSERT INTO ${outboxTable(schema)} (id, type, queue, payload, request_id, created_at, updated_at)
    VALUES (${id}::uuid, ${event.type}, ${event.queue}, ${JSON.stringify(event.payload ?? null)}::jsonb,
            ${event.requestId ?? null}, clock_timestamp(), clock_timestamp())`;
  return id;
}

/** The part of a BullMQ `Queue` the relay uses. */
export interface OutboxQueue {
  add(name: string, data: DomainEventJob, opts: { jobId: string }): Promise<unknown>;
  /** Several jobs in one Redis round trip, in order (a BullMQ `Queue` has it); without it the relay adds one at a time. */
  addBulk?(jobs: { name: string; data: DomainEventJob; opts: { jobId: string } }[]): Promise<unknown>;
}

/** pino's calling convention; a pino `Logger` fits. */
export interface OutboxLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface OutboxRelayOptions {
  prisma: PrismaClient;
  schema: OutboxSchema;
  /** The queue for a name; the caller owns (and closes) the queues. */
  queues: (name: string) => OutboxQueue;
  /** Events per transaction. */
  batchSize?: number;
  /** Pause between polls when the outbox is drained. */
  intervalMs?: number;
  /**
   * Give up on one delivery after this long. A BullMQ producer that has not reached Redis yet
   * waits for it instead of failing; the relay must not hold its row locks meanwhile.
   */
  addTimeoutMs?: number;
  /** After this many failed deliveries an event is left alone (it stays in the table with its last error). */
  maxAttempts?: number;
  /** Published events are deleted after this long. */
  retentionMs?: number;
  /** How often the loop deletes old published events. */
  cleanupIntervalMs?: number;
  logger?: OutboxLogger;
  /** Signs each job for the queue it goes to (the producing service's identity: docs/messaging.md, "Signed events"). */
  sign?: (job: DomainEventJob, queue: string) => string | undefined;
}

export interface RelayResult {
  published: number;
  failed: number;
}

interface OutboxRow {
  id: string;
  type: string;
  queue: string;
  payload: unknown;
  request_id: string | null;
  attempts: number;
  created_at: Date;
}

const DAY_MS = 24 * 60 * 60 * 1000;

const consoleLogger: OutboxLogger = {
  info: (obj, msg) => console.info(msg, obj),
  warn: (obj, msg) => console.warn(msg, obj),
  error: (obj, msg) => console.error(msg, obj),
};

export class OutboxRelay {
  private readonly table: string;
  private readonly batchSize: number;
  private readonly intervalMs: number;
  private readonly maxAttempts: number;
  private readonly addTimeoutMs: number;
  private readonly retentionMs: number;
  private readonly cleanupIntervalMs: number;
  private readonly logger: OutboxLogger;
  private loop?: Promise<void>;
  private wake?: AbortController;

  constructor(private readonly options: OutboxRelayOptions) {
    this.table = outboxTableName(options.schema);
    this.batchSize = options.batchSize ?? 100;
    this.intervalMs = options.intervalMs ?? 1000;
    this.maxAttempts = options.maxAttempts ?? 20;
    this.addTimeoutMs = options.addTimeoutMs ?? 5_000;
    this.retentionMs = options.retentionMs ?? 7 * DAY_MS;
    this.cleanupIntervalMs = options.cleanupIntervalMs ?? 60 * 60 * 1000;
    this.logger = options.logger ?? consoleLogger;
  }

  /** The job of a row for one queue, signed when the relay signs. */
  private job(row: OutboxRow, queue: string): DomainEventJob {
    const job = toJob(row);
    const assertion = this.options.sign?.(job, queue);
    return assertion ? { ...job, assertion } : job;
  }

  /** Polls until {@link stop}; a full batch is followed at once by the next one. */
  start(): void {
    if (this.loop) return;
    this.wake = new AbortController();
    this.loop = this.run(this.wake.signal);
  }

  /** Finishes the batch in progress, then returns. */
  async stop(): Promise<void> {
    this.wake?.abort();
    await this.loop;
    this.loop = undefined;
  }

  /**
   * Publishes one batch. Rows are locked with SKIP LOCKED, so replicas relaying the same outbox
   * each take different rows; a delivery that fails is counted on its row and retried next time.
   *
   * A poll is on the Prisma client's own pg pool ({@link pgPoolOf}): it runs ten times a second in
   * every service, mostly finding nothing, and an empty outbox costs one indexed read (no
   * transaction) instead of Prisma's interactive transaction.
   */
  async relayOnce(): Promise<RelayResult> {
    const pool = pgPoolOf(this.options.prisma);
    const due = await pool.query(
      `SELECT 1 FROM ${this.table} o WHERE ${this.dueRows} ORDER BY o.created_at, o.id LIMIT 1`,
      [this.maxAttempts],
    );
    if (due.rowCount === 0) return { published: 0, failed: 0 };
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      try {
        // Read the partial index of unpublished events in order (an index scan stops at the
        // batch and marks the entries of published events dead as it passes them). The planner
        // would take a bitmap scan for the few live rows it expects, and a bitmap scan walks every
        // entry left by published events until VACUUM comes: tens of thousands under a steady load.
        await client.query('SET LOCAL enable_bitmapscan = off');
        const { rows } = await client.query<OutboxRow>(
          `SELECT o.id::text AS id, o.type, o.queue, o.payload, o.request_id, o.attempts, o.created_at
             FROM ${this.table} o
            WHERE ${this.dueRows}
            -- The order of the partial index of unpublished events: the first batch, no sort.
            ORDER BY o.created_at, o.id
            LIMIT $2
              FOR UPDATE SKIP LOCKED`,
          [this.maxAttempts, this.batchSize],
        );
        const { published, failed } = await this.deliver(client, rows);
        if (published.length) {
          await client.query(
            `UPDATE ${this.table} SET published_at = now(), updated_at = now() WHERE id = ANY($1::uuid[])`,
            [published],
          );
        }
        await client.query('COMMIT');
        return { published: published.length, failed };
      } catch (err) {
        await client.query('ROLLBACK').catch((rollback: Error) => (broken = rollback));
        throw err;
      }
    } finally {
      // A connection that failed mid-transaction is closed, not handed to the next caller.
      client.release(broken);
    }
  }

  /** Unpublished rows due for a try ($1: the most attempts); after a failure, 2^attempts seconds (at most an hour) pass first. */
  private readonly dueRows = `o.published_at IS NULL AND o.attempts < $1
            AND (o.attempts = 0 OR o.updated_at + make_interval(secs => least(power(2, o.attempts), 3600)) <= now())`;

  /**
   * Adds the rows' jobs, each queue's in the order its events were written: all of a queue's rows
   * in one bulk add, or one at a time where the queue cannot take a bulk or refused one (to learn
   * which row it was; BullMQ ignores a job id it holds already, so jobs the bulk did add are not
   * doubled). Stops at the first sign that Redis is away: the next poll tries again.
   */
  private async deliver(
    client: pg.PoolClient,
    rows: OutboxRow[],
  ): Promise<{ published: string[]; failed: number }> {
    const published: string[] = [];
    let failed = 0;
    const paused = (queue: string, err: unknown) => {
      // Redis is away: not the event's fault, so no attempt is counted.
      this.logger.warn({ schema: this.options.schema, queue, err }, 'Queue unreachable; relay paused');
      return { published, failed };
    };
    for (const run of runsByQueue(rows)) {
      const name = run[0].queue;
      const queue = this.options.queues(name);
      if (run.length > 1 && queue.addBulk) {
        try {
          // Should a late add still land, the retry carries the same job ids and BullMQ ignores them.
          await withTimeout(
            queue.addBulk(
              run.map((row) => ({ name: row.type, data: this.job(row, name), opts: { jobId: row.id } })),
            ),
            this.addTimeoutMs,
            `Queue ${name} did not accept ${run.length} jobs within ${this.addTimeoutMs} ms`,
          );
          published.push(...run.map((row) => row.id));
          continue;
        } catch (err) {
          if (isUnreachable(err)) return paused(name, err);
        }
      }
      for (const row of run) {
        try {
          await withTimeout(
            queue.add(row.type, this.job(row, name), { jobId: row.id }),
            this.addTimeoutMs,
            `Queue ${name} did not accept the job within ${this.addTimeoutMs} ms`,
          );
          published.push(row.id);
        } catch (err) {
          if (isUnreachable(err)) return paused(name, err);
          failed++;
          await this.recordFailure(client, row, err);
        }
      }
    }
    return { published, failed };
  }

  /** Deletes events published more than `olderThanMs` ago. Returns how many. */
  purgePublished(olderThanMs: number = this.retentionMs): Promise<number> {
    const before = new Date(Date.now() - olderThanMs);
    return this.options.prisma
      .$executeRaw`DELETE FROM ${Prisma.raw(this.table)} WHERE published_at < ${before}`;
  }

  private async recordFailure(client: pg.PoolClient, row: OutboxRow, err: unknown): Promise<void> {
    const message = err instanceof Error ? err.message : String(err);
    await client.query(
      `UPDATE ${this.table} SET attempts = attempts + 1, last_error = $1, updated_at = now() WHERE id = $2::uuid`,
      [message, row.id],
    );
    const fields = { schema: this.options.schema, eventId: row.id, type: row.type, queue: row.queue, err };
    if (row.attempts + 1 >= this.maxAttempts) {
      this.logger.error(
        fields,
        'Outbox event could not be delivered; giving up (it stays in the outbox table)',
      );
    } else {
      this.logger.warn(fields, 'Outbox event could not be delivered; will retry');
    }
  }

  private async run(signal: AbortSignal): Promise<void> {
    let nextCleanup = 0;
    while (!signal.aborted) {
      let more = false;
      try {
        const { published } = await this.relayOnce();
        more = published === this.batchSize;
        if (Date.now() >= nextCleanup) {
          nextCleanup = Date.now() + this.cleanupIntervalMs;
          const purged = await this.purgePublished();
          if (purged)
            this.logger.info({ schema: this.options.schema, purged }, 'Purged published outbox events');
        }
      } catch (err) {
        // The database or Redis is away: keep polling, it will come back.
        this.logger.error({ schema: this.options.schema, err }, 'Outbox relay failed; retrying');
      }
      if (!more) await sleep(this.intervalMs, undefined, { signal }).catch(() => undefined);
    }
  }
}

/**
 * The rows for each queue, in the order they were written. Each queue gets its jobs in order;
 * there is no order between queues to keep, since each has its own consumers.
 */
function runsByQueue(rows: OutboxRow[]): OutboxRow[][] {
  const runs = new Map<string, OutboxRow[]>();
  for (const row of rows) {
    const run = runs.get(row.queue);
    if (run) run.push(row);
    else runs.set(row.queue, [row]);
  }
  return [...runs.values()];
}

function toJob(row: OutboxRow): DomainEventJob {
  return {
    id: row.id,
    type: row.type,
    payload: row.payload,
    ...(row.request_id ? { requestId: row.request_id } : {}),
    occurredAt: row.created_at.toISOString(),
  };
}

class AddTimeout extends Error {
  override readonly name = 'AddTimeout';
}

/** Errors that say Redis could not be reached, as opposed to an answer from Redis. */
const UNREACHABLE =
  /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EPIPE/;

function isUnreachable(err: unknown): boolean {
  if (err instanceof AddTimeout) return true;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return (typeof code === 'string' && UNREACHABLE.test(code)) || UNREACHABLE.test(message);
}

async function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AddTimeout(message)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A domain event as a producer writes it: its type decides the queues it goes to. */
export interface NewDomainEvent<T extends DomainEventType> {
  type: T;
  payload: DomainEventPayload<T>;
  requestId?: string;
}

/**
 * Appends a domain event to `schema`'s outbox once for every queue that subscribes to its type
 * ({@link EVENT_ROUTES}). Call it inside the transaction that makes the change the event describes.
 */
export async function publishDomainEvent<T extends DomainEventType>(
  tx: OutboxWriter,
  schema: OutboxSchema,
  event: NewDomainEvent<T>,
): Promise<void> {
  for (const routed of routeDomainEvent(event)) await appendOutboxEvent(tx, schema, routed);
}

/** A domain event as the outbox rows it becomes: one per queue that subscribes to its type. */
export function routeDomainEvent<T extends DomainEventType>(event: NewDomainEvent<T>): NewOutboxEvent[] {
  return EVENT_ROUTES[event.type].map((queue) => ({
    type: event.type,
    queue,
    payload: event.payload,
    ...(event.requestId ? { requestId: event.requestId } : {}),
  }));
}

/** An outbox row as SQL written in the database takes it (JSON, snake_case; see the catalog's launch functions). */
export interface OutboxRecord {
  id: string;
  type: string;
  queue: string;
  payload: unknown;
  request_id: string | null;
}

/** Outbox rows for SQL that writes them itself, in the given order; events without an id get a fresh UUID. */
export function outboxRecords(events: readonly NewOutboxEvent[]): OutboxRecord[] {
  return events.map((e) => ({
    id: e.id ?? randomUUID(),
    type: e.type,
    queue: e.queue,
    payload: e.payload ?? null,
    request_id: e.requestId ?? null,
  }));
}
