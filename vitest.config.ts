import { fileURLToPath } from 'node:url';
import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

const lib = (name: string) => fileURLToPath(new URL(`./libs/${name}/src/index.ts`, import.meta.url));

// SWC compiles the tests so that NestJS gets the decorator metadata it injects by.
export default defineConfig({
  plugins: [
    swc.vite({
      jsc: {
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true },
        target: 'es2023',
      },
    }),
  ],
  resolve: {
    alias: {
      '@imagemart/bundle-format': lib('bundle-format'),
      '@imagemart/config': lib('config'),
      '@imagemart/contracts': lib('contracts'),
      '@imagemart/database': lib('database'),
      '@imagemart/messaging': lib('messaging'),
      '@imagemart/object-store': lib('object-store'),
      '@imagemart/observability': lib('observability'),
      '@imagemart/testing': lib('testing'),
    },
  },
  test: {
    projects: [
      {
        extends: true,
        test: { name: 'unit+integration', include: ['{apps,libs,tools,bench}/**/*.{spec,integration-spec}.ts'] },
      },
      {
        // The real processes from the build, over HTTP; the build runs once before them.
        extends: true,
        test: { name: 'e2e', include: ['e2e/**/*.e2e-spec.ts'], globalSetup: ['e2e/support/build.ts'] },
      },
    ],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: integration tests each make their own database and Redis prefix, so two files at
    // a time is as parallel as is useful here.
    maxWorkers: 2,
    reporters: ['default', './tools/vitest/summary.reporter.ts'],
  },
});
