import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { PrismaClient } from './generated/prisma/client.js';
import { DEFAULT_MIGRATIONS_DIR, migrate } from './migrator.js';
import { createPrismaClient } from './prisma.js';

export interface ScratchDatabase {
  /** Connection URL of the fresh, migrated database. */
  url: string;
  name: string;
  /** A client on it (small pool); `drop()` disconnects it. */
  prisma: PrismaClient;
  /** Disconnects and drops the database, whoever is still connected. */
  drop(): Promise<void>;
}

/**
 * A fresh database `imagemart_test_<label>_<random>` on the server of `serverUrl`, migrated with
 * the project's migrations: what each test file works in, so test runs never meet. Tests reach it
 * through @imagemart/testing; this library's own tests use it directly.
 */
export async function createScratchDatabase(
  serverUrl: string,
  label = 'db',
  migrationsDir = DEFAULT_MIGRATIONS_DIR,
): Promise<ScratchDatabase> {
  // PostgreSQL names are at most 63 bytes; keep the random part whole.
  const safeLabel = label.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 30);
  const name = `imagemart_test_${safeLabel}_${randomBytes(5).toString('hex')}`;
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const drop = () => onServer(serverUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);

  await onServer(serverUrl, `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  try {
    await migrate(url.toString(), migrationsDir);
  } catch (err) {
    await drop();
    throw err;
  }
  const prisma = createPrismaClient(url.toString(), { poolSize: 5 });
  return {
    url: url.toString(),
    name,
    prisma,
    async drop() {
      await prisma.$disconnect();
      await drop();
    },
  };
}

async function onServer(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
