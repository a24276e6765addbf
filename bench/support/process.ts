import type { ChildProcess } from 'node:child_process';
import { pathToFileURL } from 'node:url';

/** Stops a child process: SIGTERM, then SIGKILL if it has not exited within 5 s. */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Lets a benchmark module also run on its own (`node --import tsx bench/<name>.bench.ts`): when
 * `moduleUrl` is the script node was started with, runs the benchmark and prints its result.
 */
export function runIfMain(moduleUrl: string, run: () => Promise<Record<string, unknown>>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  run().then(
    (result) => {
      console.log(JSON.stringify(result, null, 2));
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}

/**
 * Node options for the platform processes a benchmark starts: with BENCH_PROFILE_DIR set, each
 * writes a V8 CPU profile there when it exits (open it in Chrome's DevTools or speedscope).
 */
export function childNodeArgs(): string[] {
  const dir = process.env['BENCH_PROFILE_DIR'];
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
}
