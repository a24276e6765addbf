export * from './bullmq/index.js';
export * from './identity/index.js';
export * from './redis-streams/index.js';
export * from './rpc/index.js';
export * from './runtime/index.js';
export * from './acl/index.js';
