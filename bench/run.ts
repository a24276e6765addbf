/**
 * `npm run bench -- NAME`: runs bench/NAME.bench.ts and writes bench/results/NAME.json;
 * with no name, every benchmark in turn.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

interface BenchModule {
  run(): Promise<Record<string, unknown>>;
}

const available = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((n) => !available.includes(n));
if (unknown.length) {
  process.stderr.write(`Unknown benchmark(s): ${unknown.join(', ')}. Available: ${available.join(', ')}\n`);
  process.exit(2);
}

mkdirSync(join(here, 'results'), { recursive: true });
for (const name of wanted.length ? wanted : available) {
  process.stdout.write(`bench ${name}…\n`);
  const mod = (await import(pathToFileURL(join(here, `${name}.bench.ts`)).href)) as BenchModule;
  const result = { name, ...(await mod.run()), node: process.version, measured_at: new Date().toISOString() };
  const file = join(here, 'results', `${name}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n→ ${file}\n`);
}
process.exit(0);
