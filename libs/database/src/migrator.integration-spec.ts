import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_MIGRATIONS_DIR,
  ensureDatabase,
  migrate,
  MigrationError,
  readMigrations,
} from './migrator.js';

// The migrator's own tests need empty databases, so they make them here. (Not through
// @imagemart/testing in any case: that library depends on this one.)
const testDatabaseUrl = () => process.env['DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/test';
const created: string[] = [];
const tempDirs: string[] = [];

async function admin<T>(work: (client: pg.Client) => Promise<T>, url = testDatabaseUrl()): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function databaseUrl(name: string): string {
  const url = new URL(testDatabaseUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

/** A name for a database that does not exist yet; dropped after the file. */
function freshName(): string {
  const name = `imagemart_test_migrator_${randomBytes(5).toString('hex')}`;
  created.push(name);
  return name;
}

async function emptyDatabase(): Promise<string> {
  const name = freshName();
  await admin((c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  return databaseUrl(name);
}

async function tempMigrations(migrations: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'imagemart-migrations-'));
  tempDirs.push(dir);
  for (const [name, sql] of Object.entries(migrations)) {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, 'migration.sql'), sql);
  }
  return dir;
}

interface HistoryRow {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

const history = (url: string) =>
  admin(
    (c) => c.query<HistoryRow>('SELECT * FROM _prisma_migrations ORDER BY started_at, migration_name'),
    url,
  ).then((r) => r.rows);

afterEach(async () => {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

afterAll(async () => {
  await Promise.all(
    created.map((name) =>
      admin((c) => c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`)),
    ),
  );
});

describe('migrate', () => {
  it('applies every migration to a fresh database and records them as Prisma does', async () => {
    const url = await emptyDatabase();
    const files = await readMigrations();
    expect(files.length).toBeGreaterThan(0);

    const summary = await migrate(url);

    expect(summary).toEqual({ applied: files.map((f) => f.name), skipped: 0 });
    const rows = await history(url);
    expect(rows).toHaveLength(files.length);
    for (const [i, file] of files.entries()) {
      const bytes = await readFile(join(DEFAULT_MIGRATIONS_DIR, file.name, 'migration.sql'));
      expect(rows[i]).toMatchObject({
        migration_name: file.name,
        checksum: createHash('sha256').update(bytes).digest('hex'),
        logs: null,
        rolled_back_at: null,
        applied_steps_count: 1,
      });
      expect(rows[i].id).toMatch(/^[0-9a-f-]{36}$/);
      expect(rows[i].finished_at!.getTime()).toBeGreaterThanOrEqual(rows[i].started_at.getTime());
    }

    // The history table has Prisma's exact shape, so `prisma migrate deploy` can take over.
    const columns = await admin(
      (c) =>
        c.query(
          `SELECT column_name, data_type, character_maximum_length AS length, is_nullable, column_default
             FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = '_prisma_migrations' ORDER BY ordinal_position`,
        ),
      url,
    );
    expect(columns.rows).toEqual([
      {
        column_name: 'id',
        data_type: 'character varying',
        length: 36,
        is_nullable: 'NO',
        column_default: null,
      },
      {
        column_name: 'checksum',
        data_type: 'character varying',
        length: 64,
        is_nullable: 'NO',
        column_default: null,
      },
      {
        column_name: 'finished_at',
        data_type: 'timestamp with time zone',
        length: null,
        is_nullable: 'YES',
        column_default: null,
      },
      {
        column_name: 'migration_name',
        data_type: 'character varying',
        length: 255,
        is_nullable: 'NO',
        column_default: null,
      },
      { column_name: 'logs', data_type: 'text', length: null, is_nullable: 'YES', column_default: null },
      {
        column_name: 'rolled_back_at',
        data_type: 'timestamp with time zone',
        length: null,
        is_nullable: 'YES',
        column_default: null,
      },
      {
        column_name: 'started_at',
        data_type: 'timestamp with time zone',
        length: null,
        is_nullable: 'NO',
        column_default: 'now()',
      },
      {
        column_name: 'applied_steps_count',
        data_type: 'integer',
        length: null,
        is_nullable: 'NO',
        column_default: '0',
      },
    ]);

    const again = await migrate(url);
    expect(again).toEqual({ applied: [], skipped: files.length });
    expect(await history(url)).toHaveLength(files.length);
  });

  it('applies each migration exactly once when five processes migrate at the same time', async () => {
    const url = await emptyDatabase();
    const files = await readMigrations();

    const summaries = await Promise.all(Array.from({ length: 5 }, () => migrate(url)));

    expect(summaries.flatMap((s) => s.applied).sort()).toEqual(files.map((f) => f.name).sort());
    expect(summaries.filter((s) => s.applied.length > 0)).toHaveLength(1);
    const rows = await history(url);
    expect(rows.map((r) => r.migration_name)).toEqual(files.map((f) => f.name));
  });

  it('refuses a migration changed after it was applied, but accepts converted line endings', async () => {
    const url = await emptyDatabase();
    const dir = await mkdtemp(join(tmpdir(), 'imagemart-migrations-'));
    tempDirs.push(dir);
    await cp(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
    const [first] = await readMigrations(dir);
    await migrate(url, dir);
    const file = join(dir, first.name, 'migration.sql');
    const original = await readFile(file, 'utf8');

    // git's autocrlf rewrites line endings; Prisma still matches the checksum, and so do we.
    await writeFile(file, original.replaceAll('\n', '\r\n'));
    await expect(migrate(url, dir)).resolves.toMatchObject({ applied: [] });

    await writeFile(file, `${original}\n-- an afterthought\n`);
    const refused = migrate(url, dir);
    await expect(refused).rejects.toBeInstanceOf(MigrationError);
    await expect(refused).rejects.toThrow(`Migration ${first.name} was modified after it was applied`);
  });

  it('records a failed migration, rolls its statements back and refuses to go on until it is resolved', async () => {
    const url = await emptyDatabase();
    const dir = await tempMigrations({
      '001_good': 'CREATE TABLE good (id int PRIMARY KEY);',
      '002_broken': 'CREATE TABLE half (id int);\nSELECT * FROM no_such_table;',
      '003_later': 'CREATE TABLE later (id int);',
    });

    const failed = migrate(url, dir);
    await expect(failed).rejects.toBeInstanceOf(MigrationError);
    await expect(failed).rejects.toThrow(
      /Migration 002_broken failed: relation "no_such_table" does not exist/,
    );

    const rows = await history(url);
    expect(rows.map((r) => [r.migration_name, r.finished_at !== null, r.applied_steps_count])).toEqual([
      ['001_good', true, 1],
      ['002_broken', false, 0],
    ]);
    expect(rows[1].logs).toContain('SQLSTATE 42P01');
    const tables = await admin(
      (c) =>
        c.query<{ table_name: string }>(
          `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
        ),
      url,
    );
    expect(tables.rows.map((r) => r.table_name)).toEqual(['_prisma_migrations', 'good']);

    // As `prisma migrate deploy` (P3009): nothing more until someone resolves the failure.
    await expect(migrate(url, dir)).rejects.toThrow(/002_broken failed earlier/);

    // Resolved the way `prisma migrate resolve --rolled-back` does it, with the script fixed.
    await admin(
      (c) => c.query(`UPDATE _prisma_migrations SET rolled_back_at = now() WHERE finished_at IS NULL`),
      url,
    );
    await writeFile(join(dir, '002_broken', 'migration.sql'), 'CREATE TABLE half (id int);');
    await expect(migrate(url, dir)).resolves.toEqual({ applied: ['002_broken', '003_later'], skipped: 1 });
  });
});

describe('ensureDatabase', () => {
  it('creates a missing database once, even when several processes ask at the same time', async () => {
    const name = freshName();
    const url = databaseUrl(name);

    const results = await Promise.all(Array.from({ length: 5 }, () => ensureDatabase(url)));

    expect(results.filter(Boolean).length).toBeLessThanOrEqual(1);
    const exists = await admin((c) => c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]));
    expect(exists.rowCount).toBe(1);
    await expect(ensureDatabase(url)).resolves.toBe(false);
  });

  it('quotes the database name', async () => {
    const name = `${freshName()}_"Odd-Name"`;
    created.push(name);
    await expect(ensureDatabase(databaseUrl(encodeURIComponent(name)))).resolves.toBe(true);
    const exists = await admin((c) => c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]));
    expect(exists.rowCount).toBe(1);
  });
});
