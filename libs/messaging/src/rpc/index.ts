export * from './domain.exception.js';
export * from './zod-payload.pipe.js';
