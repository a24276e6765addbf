export * from './permission.patterns.js';
export * from './permission.schemas.js';
