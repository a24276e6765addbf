export * from './queues.js';
export * from './services.js';
