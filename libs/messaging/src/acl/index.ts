export * from './redis-acl.rules.js';
export * from './redis-acl.users.js';
