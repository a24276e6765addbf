// The rules themselves are contracts (libs/contracts/src/common/redis-acl.rules.ts); applying them to a Redis is here.
export * from './redis-acl.users.js';
