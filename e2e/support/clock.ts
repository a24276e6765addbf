import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PRELOAD = fileURLToPath(new URL('./shifted-clock.mjs', import.meta.url));
/** How long the processes take to read a new offset (they read the file every 20 ms). */
const SETTLE_MS = 300;

/** The first instant of the calendar month (UTC) that contains `at`. */
export const monthStart = (at: Date): Date => new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));

/** `2026-11`: the calendar month (UTC) that contains `at`. */
export const monthLabel = (at: Date): string => at.toISOString().slice(0, 7);

/**
 * The clock of a platform's processes, behind the machine's by an offset the test moves forward
 * (e2e/support/shifted-clock.mjs). It never runs ahead of the machine's clock: the deadline of
 * a call the test makes on a service's stream (`Platform.rpc`) is taken from the machine's clock,
 * and a service drops a call whose deadline has passed by its own.
 */
export class PlatformClock {
  private readonly dir = mkdtempSync(join(tmpdir(), 'imagemart-clock-'));
  private readonly file = join(this.dir, 'offset');
  private offsetMs = 0;

  /** A clock that shows `at` now (at most the machine's time). */
  constructor(at: Date) {
    this.write(Math.min(0, at.getTime() - Date.now()));
  }

  /** The settings that put a process on this clock. */
  env(): Record<string, string> {
    return { NODE_OPTIONS: `--import=${pathToFileURL(PRELOAD).href}`, CLOCK_OFFSET_FILE: this.file };
  }

  /** What the processes' clock shows now. */
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  /** Moves the processes' clock forward to `at` (waiting for the machine's clock to get there first, if needed). */
  async jumpTo(at: Date): Promise<void> {
    if (at.getTime() < this.now().getTime())
      throw new Error(`the clock only moves forward: ${at.toISOString()} has passed`);
    const ahead = at.getTime() - Date.now();
    if (ahead > 0) await sleep(ahead);
    this.write(Math.min(0, at.getTime() - Date.now()));
    await sleep(SETTLE_MS);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private write(offsetMs: number): void {
    this.offsetMs = offsetMs;
    // Written aside and renamed: a process never reads half a number.
    writeFileSync(`${this.file}.next`, String(offsetMs));
    renameSync(`${this.file}.next`, this.file);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
