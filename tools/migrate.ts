/**
 * `node --import tsx tools/migrate.ts`: creates the database named by DATABASE_URL if needed and
 * applies the pending migrations of prisma/migrations, as `prisma migrate deploy` would. Exits 1
 * with one sentence (no stack trace) when it cannot.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { baseConfigSchema, ConfigError, loadConfig } from '@imagemart/config';
import { describeConnectionError, ensureDatabase, migrate, MigrationError } from '@imagemart/database';

/**
 * prisma/migrations of the checkout this file is in: tools/ (run from source) and dist/tools/
 * (built) sit one and two levels below it.
 */
function findMigrationsDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  return [resolve(here, '..'), resolve(here, '../..'), process.cwd()]
    .map((root) => join(root, 'prisma/migrations'))
    .find((dir) => existsSync(join(dir, 'migration_lock.toml')));
}

async function main(): Promise<number> {
  let databaseUrl: string;
  try {
    databaseUrl = loadConfig(baseConfigSchema.pick({ DATABASE_URL: true })).DATABASE_URL;
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message);
    throw err;
  }

  const migrationsDir = findMigrationsDir();
  if (!migrationsDir) return fail('Cannot find prisma/migrations: run this from the project folder.');

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
