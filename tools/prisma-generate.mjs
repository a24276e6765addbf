// Generates the Prisma Client (libs/database/src/generated/prisma) from prisma/schema.prisma.
// `prisma generate` needs no database and, with the WASM query compiler, no native query engine;
// the CLI still looks for a schema engine binary it cannot download here, so it is pointed at a
// placeholder file that generate never runs.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) {
  const placeholder = join(mkdtempSync(join(tmpdir(), 'imagemart-prisma-')), 'schema-engine');
  writeFileSync(placeholder, '');
  env.PRISMA_SCHEMA_ENGINE_BINARY = placeholder;
}
env.PRISMA_HIDE_UPDATE_MESSAGE = '1';
const result = spawnSync(process.execPath, ['node_modules/prisma/build/index.js', 'generate'], {
  stdio: ['ignore', 'pipe', 'pipe'],
  env,
});
// Quiet when it works; everything it said when it does not.
if (result.status !== 0) {
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  process.exit(result.status ?? 1);
}
