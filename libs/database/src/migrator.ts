import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import pg from 'pg';

/**
 * Applies `prisma/migrations/<name>/migration.sql` the way `prisma migrate deploy` does, without
 * Prisma's native schema engine (which cannot be installed everywhere we run), and records them in
 * `_prisma_migrations` exactly as Prisma does, so either tool can take over from the other.
 */

/** Prisma Migrate's own advisory lock key: our runner and `prisma migrate deploy` exclude each other. */
const MIGRATE_LOCK_KEY = 72707369;

/** Prisma's DDL for its history table (sql-schema-connector, PostgreSQL flavour). */
const CREATE_MIGRATIONS_TABLE = `
  CREATE TABLE IF NOT EXISTS _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
  )`;

/** Relative to the working directory: processes start from the repository root (or the image's workdir). */
export const DEFAULT_MIGRATIONS_DIR = 'prisma/migrations';

export interface MigrationSummary {
  /** Names of the migrations this call applied, in order. */
  applied: string[];
  /** Migrations that were already applied. */
  skipped: number;
}

/** A migration failed, was changed after it was applied, or an earlier failure is unresolved. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
  constructor(
    message: string,
    readonly migration: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface MigrationFile {
  name: string;
  script: string;
  checksum: string;
}

interface HistoryRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
}

/** SHA-256 of the script's bytes, lower-case hex: Prisma's checksum. */
export function migrationChecksum(script: string | Buffer): string {
  return createHash('sha256').update(script).digest('hex');
}

/** Prisma accepts a script whose line endings git converted (CRLF ↔ LF); so do we. */
function checksumMatches(script: string, checksum: string): boolean {
  return [script, script.replaceAll('\r\n', '\n'), script.replaceAll(/\r?\n/g, '\r\n')].some(
    (variant) => migrationChecksum(variant) === checksum,
  );
}

export async function readMigrations(
  migrationsDir: string = DEFAULT_MIGRATIONS_DIR,
): Promise<MigrationFile[]> {
  const dir = resolve(migrationsDir);
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  const files: MigrationFile[] = [];
  for (const name of names) {
    const bytes = await readFile(join(dir, name, 'migration.sql')).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined; // Prisma ignores a folder without a script, too
      throw err;
    });
    if (bytes) files.push({ name, script: bytes.toString('utf8'), checksum: migrationChecksum(bytes) });
  }
  return files;
}

/**
 * Applies every pending migration in name order, each in its own transaction, under an advisory
 * lock so that several processes starting at once apply each migration exactly once. A statement
 * PostgreSQL refuses inside a transaction (CREATE INDEX CONCURRENTLY) cannot be used in a migration.
 */
export async function migrate(
  databaseUrl: string,
  migrationsDir: string = DEFAULT_MIGRATIONS_DIR,
): Promise<MigrationSummary> {
  const migrations = await readMigrations(migrationsDir);
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'imagemart-migrate' });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATE_LOCK_KEY]);
    try {
      await client.query(CREATE_MIGRATIONS_TABLE);
      const { rows } = await client.query<HistoryRow>(
        `SELECT migration_name, checksum, finished_at, rolled_back_at, logs
           FROM _prisma_migrations WHERE rolled_back_at IS NULL ORDER BY started_at`,
      );
      const applied = checkHistory(rows, migrations);
      const summary: MigrationSummary = { applied: [], skipped: 0 };
      for (const migration of migrations) {
        if (applied.has(migration.name)) {
          summary.skipped++;
          continue;
        }
        await applyOne(client, migration);
        summary.applied.push(migration.name);
      }
      return summary;
    } finally {
      // Closing the session releases the lock too; this only matters if end() is slow.
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATE_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    await client.end();
  }
}

/** Refuses, as `prisma migrate deploy` does, an unresolved failure or an edited migration. */
function checkHistory(rows: HistoryRow[], migrations: MigrationFile[]): Set<string> {
  const failed = rows.find((r) => r.finished_at === null);
  if (failed) {
    throw new MigrationError(
      `Migration ${failed.migration_name} failed earlier and is recorded as failed in _prisma_migrations ` +
        `(${firstLine(failed.logs)}). Repair the database, mark it rolled back ` +
        `(prisma migrate resolve --rolled-back ${failed.migration_name}, or set its rolled_back_at), then migrate again.`,
      failed.migration_name,
    );
  }
  const byName = new Map(migrations.map((m) => [m.name, m]));
  for (const row of rows) {
    // A recorded migration with no local file is fine: a newer release may have applied it.
    const file = byName.get(row.migration_name);
    if (file && !checksumMatches(file.script, row.checksum)) {
      throw new MigrationError(
        `Migration ${row.migration_name} was modified after it was applied (checksum ${file.checksum}, ` +
          `recorded ${row.checksum}). Restore the applied version and put the change in a new migration.`,
        row.migration_name,
      );
    }
  }
  return new Set(rows.map((r) => r.migration_name));
}

async function applyOne(client: pg.Client, migration: MigrationFile): Promise<void> {
  const id = randomUUID();
  let startedAt = new Date();
  try {
    await client.query('BEGIN');
    // The server's clock, as Prisma records it.
    startedAt = (await client.query<{ now: Date }>('SELECT now()')).rows[0].now;
    await client.query(migration.script);
    // Recorded in the same transaction: a migration is applied and recorded, or neither.
    await client.query(
      `INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, logs, started_at, applied_steps_count)
       VALUES ($1, $2, clock_timestamp(), $3, NULL, $4, 1)`,
      [id, migration.checksum, migration.name, startedAt],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    const logs = describeSqlError(err);
    // As Prisma does: the failure stays on record (finished_at NULL) and blocks later runs until resolved.
    await client.query(
      `INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, logs, started_at, applied_steps_count)
       VALUES ($1, $2, NULL, $3, $4, $5, 0)`,
      [id, migration.checksum, migration.name, logs, startedAt],
    );
    throw new MigrationError(`Migration ${migration.name} failed: ${logs}`, migration.name, { cause: err });
  }
}

function describeSqlError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as Partial<pg.DatabaseError>;
  const parts = [err.message];
  if (e.code) parts.push(`SQLSTATE ${e.code}`);
  if (e.position) parts.push(`at character ${e.position}`);
  if (e.detail) parts.push(e.detail);
  return parts.join('; ');
}

function firstLine(text: string | null): string {
  return text?.split('\n')[0] ?? 'no log recorded';
}

/**
 * Creates the database named in `databaseUrl` if it does not exist yet, connecting to the
 * server's `postgres` database to do so. Returns whether it created it.
 */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const target = new URL(databaseUrl);
  // decodeURI, as pg does, so we create the database pg will then connect to.
  const name = decodeURI(target.pathname.slice(1));
  if (!name) throw new Error('DATABASE_URL names no database');

  // The common case needs no access to the maintenance database.
  const probe = new pg.Client({ connectionString: databaseUrl });
  try {
    await probe.connect();
    return false;
  } catch (err) {
    if ((err as { code?: string }).code !== '3D000') throw err; // 3D000: invalid_catalog_name
  } finally {
    await probe.end().catch(() => undefined);
  }

  const maintenance = new URL(databaseUrl);
  maintenance.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: maintenance.toString() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    return true;
  } catch (err) {
    // Another process created it a moment ago: 42P04 duplicate_database, or 23505 when both
    // inserts into pg_database race. Either way the database now exists.
    const code = (err as { code?: string }).code;
    if (code === '42P04' || code === '23505') return false;
    throw err;
  } finally {
    await admin.end();
  }
}
