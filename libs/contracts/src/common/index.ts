export * from './names.js';
export * from './queues.js';
export * from './services.js';
export * from './callers.js';
export * from './text.schemas.js';
export * from './caller-assertions.js';
export * from './redis-acl.rules.js';
export * from './service-identity.js';
