import buildPlatform from '../support/build.js';
import { clearParts, REPORT_PATH, writeReport } from './reliability-report.js';

/** Global setup of `npm run test:soak`: a fresh build and fresh counts; the report when it ends. */
export function setup(): void {
  clearParts();
  buildPlatform();
}

export function teardown(): void {
  const report = writeReport({ suite: 'test:soak' });
  process.stdout.write(`\nreliability report (${REPORT_PATH}):\n${JSON.stringify({ ...report, parts: undefined }, null, 2)}\n`);
}
