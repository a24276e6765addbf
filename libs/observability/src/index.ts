export * from './logger.js';
export * from './metrics.js';
export * from './request-context.js';
export * from './metrics-server.js';
