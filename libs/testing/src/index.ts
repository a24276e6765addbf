export * from './test-database.js';
export * from './test-redis.js';
export * from './test-s3.js';
export * from './wait-for.js';
export * from './service-testing-module.js';
export * from './stripe/stripe-test-server.js';
export * from './stripe/stripe-webhook.fixture.js';
export * from './service-identities.js';
