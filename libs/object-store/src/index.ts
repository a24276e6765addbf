export * from './filesystem.object-store.js';
export * from './object-key.js';
export * from './object-store.config.js';
export * from './object-store.exception.js';
export * from './object-store.js';
export * from './s3.object-store.js';
