export * from './names.js';
export * from './queues.js';
export * from './services.js';
export * from './callers.js';
export * from './text.schemas.js';
