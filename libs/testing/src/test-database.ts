import { createScratchDatabase, type ScratchDatabase } from '@imagemart/database';

export type TestDatabase = ScratchDatabase;

/** The server tests use: `DATABASE_URL`, else the local default. Only its `test` database is touched, to create and drop. */
export const testDatabaseUrl = (): string =>
  process.env['DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/test';

/**
 * A database of its own for one test file: `imagemart_test_<name>_<random>`, created on the test
 * server and migrated with the project's migrations, so tests run in parallel without meeting.
 */
export function createTestDatabase(name = 'db', serverUrl = testDatabaseUrl()): Promise<TestDatabase> {
  return createScratchDatabase(serverUrl, name);
}
