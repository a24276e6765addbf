export * from './names.js';
export * from './queues.js';
export * from './services.js';
