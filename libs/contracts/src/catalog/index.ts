export * from './catalog.patterns.js';
export * from './catalog.schemas.js';
export * from './uploads.patterns.js';
export * from './uploads.schemas.js';
