import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../support/platform.js';

/**
 * Counts the reliability suite keeps: each spec file adds its own to a part file, and the soak run
 * merges the parts into bench/results/reliability.json when it ends.
 */
export interface ReliabilityCounts {
  faults_injected: number;
  faults_recovered: number;
  jobs_lost: number;
  events_lost: number;
  hostile_inputs: number;
  wrongly_accepted: number;
  load_errors: number;
  /** The longest any request took while a fault was in place (no request may hang past its timeout). */
  slowest_request_during_fault_ms: number;
  /** Messages put on the services' streams with a missing, forged, expired, replayed or misbound caller assertion. */
  internal_forgeries_tried: number;
  /** Of those, the ones a service acted on. */
  internal_forgeries_accepted: number;
  /** API keys (or other secrets) of a whole journey seen in any Redis command. */
  secrets_seen_on_redis: number;
}

export const PARTS_DIR = join(ROOT, '.data', 'reliability');
export const REPORT_PATH = join(ROOT, 'bench', 'results', 'reliability.json');

const zero = (): ReliabilityCounts => ({
  faults_injected: 0,
  faults_recovered: 0,
  jobs_lost: 0,
  events_lost: 0,
  hostile_inputs: 0,
  wrongly_accepted: 0,
  load_errors: 0,
  slowest_request_during_fault_ms: 0,
  internal_forgeries_tried: 0,
  internal_forgeries_accepted: 0,
  secrets_seen_on_redis: 0,
});

/** The counts of one spec file, written to its part file whenever they change. */
export class ReliabilityRecorder {
  readonly counts = zero();
  readonly details: Record<string, unknown> = {};

  constructor(readonly part: string) {}

  add(counts: Partial<ReliabilityCounts>, detail?: { name: string; value: unknown }): void {
    for (const [k, v] of Object.entries(counts) as [keyof ReliabilityCounts, number][]) {
      this.counts[k] = k === 'slowest_request_during_fault_ms' ? Math.max(this.counts[k], v) : this.counts[k] + v;
    }
    if (detail) this.details[detail.name] = detail.value;
    mkdirSync(PARTS_DIR, { recursive: true });
    writeFileSync(join(PARTS_DIR, `${this.part}.json`), JSON.stringify({ counts: this.counts, details: this.details }, null, 2));
  }
}

export function clearParts(): void {
  rmSync(PARTS_DIR, { recursive: true, force: true });
}

/** Sums every part into the report. */
export function writeReport(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const total = zero();
  const parts: Record<string, unknown> = {};
  let files: string[] = [];
  try {
    files = readdirSync(PARTS_DIR).filter((f) => f.endsWith('.json'));
  } catch {
    /* no part ran */
  }
  for (const file of files.sort()) {
    const part = JSON.parse(readFileSync(join(PARTS_DIR, file), 'utf8')) as { counts: ReliabilityCounts; details: unknown };
    for (const [k, v] of Object.entries(part.counts) as [keyof ReliabilityCounts, number][]) {
      total[k] = k === 'slowest_request_during_fault_ms' ? Math.max(total[k], v) : total[k] + v;
    }
    parts[file.replace(/\.json$/, '')] = part;
  }
  const report = { ...total, ...extra, parts, measured_at: new Date().toISOString() };
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(REPORT_PATH, `${JSON.stringify(report, null, 2)}\n`);
  return report;
}
