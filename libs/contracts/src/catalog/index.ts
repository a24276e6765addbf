export * from './catalog.patterns.js';
export * from './catalog.schemas.js';
export * from './uploads.patterns.js';
export * from './uploads.schemas.js';
export * from './instances.jobs.js';
export * from './instances.patterns.js';
export * from './instances.schemas.js';
