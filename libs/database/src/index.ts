// The generated client: PrismaClient, the Prisma namespace, model types and enums.
export * from './generated/prisma/client.js';
export * from './describe-connection-error.js';
export * from './migrator.js';
export * from './outbox.js';
export * from './prisma.js';
export * from './scratch-database.js';
