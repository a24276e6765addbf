import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * `npm run test:soak`: the reliability suite at full size (faults, hostile input with more runs,
 * the mixed load), writing bench/results/reliability.json. Its faster parts also run in `npm test`.
 */
export default mergeConfig(
  { ...base, test: { ...base.test, projects: undefined } },
  defineConfig({
    test: {
      name: 'soak',
      include: ['e2e/reliability/**/*.{e2e-spec,soak-spec}.ts'],
      globalSetup: ['e2e/reliability/soak.setup.ts'],
      env: { HOSTILE_RUNS_PER_OPERATION: process.env['HOSTILE_RUNS_PER_OPERATION'] ?? '100' },
      testTimeout: 900_000,
      hookTimeout: 120_000,
      // One file at a time: the fault tests crash servers and the load test measures.
      maxWorkers: 1,
      fileParallelism: false,
    },
  }),
);
