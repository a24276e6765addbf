/**
 * `node --import tsx tools/migrate.ts`: creates the database named by DATABASE_URL if needed and
 * applies the pending migrations of prisma/migrations, as `prisma migrate deploy` would. Exits 1
 * with one sentence (no stack trace) when it cannot.
 */
import { fileURLToPath } from 'node:url';
import { baseConfigSchema, ConfigError, loadConfig } from '@imagemart/config';
import { describeConnectionError, ensureDatabase, migrate, MigrationError } from '@imagemart/database';

const migrationsDir = fileURLToPath(new URL('../prisma/migrations', import.meta.url));

async function main(): Promise<number> {
  let databaseUrl: string;
  try {
    databaseUrl = loadConfig(baseConfigSchema.pick({ DATABASE_URL: true })).DATABASE_URL;
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message);
    throw err;
  }

  try {
    if (await ensureDatabase(databaseUrl)) {
      console.log(`Created database ${decodeURI(new URL(databaseUrl).pathname.slice(1))}`);
    }
    const { applied, skipped } = await migrate(databaseUrl, migrationsDir);
    for (const name of applied) console.log(`Applied migration ${name}`);
    if (applied.length === 0) {
      console.log(`Database is up to date (${skipped} migration${skipped === 1 ? '' : 's'} applied)`);
    }
    return 0;
  } catch (err) {
    if (err instanceof MigrationError) return fail(err.message);
    return fail(describeConnectionError(err, 'PostgreSQL', databaseUrl));
  }
}

function fail(sentence: string): number {
  console.error(sentence);
  return 1;
}

process.exitCode = await main();
