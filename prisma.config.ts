import { defineConfig } from 'prisma/config';

// The CLI is used here only for `prisma generate`; migrations are applied by `npm run db:migrate`
// (tools/migrate.ts), which reads the same prisma/migrations folder.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env['DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/imagemart' },
});
