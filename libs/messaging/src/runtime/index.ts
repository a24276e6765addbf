export * from './health.handler.js';
export * from './preflight.js';
export * from './queue-registry.js';
export * from './rpc-service.runtime.js';
export * from './shutdown.js';
export * from './heartbeat.js';
export * from './domain-events.consumer.js';
