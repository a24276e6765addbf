import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPrismaClient, migrate, type PrismaClient } from '@imagemart/database';

export interface TestDatabase {
  /** Connection URL of the fresh, migrated database. */
  url: string;
  name: string;
  /** A client on it (small pool); `drop()` disconnects it. */
  prisma: PrismaClient;
  /** Disconnects and drops the database, whoever is still connected. */
  drop(): Promise<void>;
}

/** The server tests use: `DATABASE_URL`, else the local default. Only its `test` database is touched, to create and drop. */
export const testDatabaseUrl = (): string =>
  process.env['DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/test';

/**
 * A database of its own for one test file: `imagemart_test_<name>_<random>`, created on the test
 * server and migrated with the project's migrations, so tests run in parallel without meeting.
 */
export async function createTestDatabase(name = 'db'): Promise<TestDatabase> {
  const serverUrl = testDatabaseUrl();
  // PostgreSQL names are at most 63 bytes; keep the random part whole.
  const safeName = name
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 30);
  const database = `imagemart_test_${safeName}_${randomBytes(5).toString('hex')}`;
  const url = withDatabase(serverUrl, database);

  await admin(serverUrl, (client) => client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`));
  try {
    await migrate(url);
  } catch (err) {
    await admin(serverUrl, (client) =>
      client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`),
    );
    throw err;
  }

  const prisma = createPrismaClient(url, { poolSize: 5 });
  return {
    url,
    name: database,
    prisma,
    async drop() {
      await prisma.$disconnect();
      await admin(serverUrl, (client) =>
        client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`),
      );
    },
  };
}

function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function admin(serverUrl: string, work: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await work(client);
  } finally {
    await client.end();
  }
}
