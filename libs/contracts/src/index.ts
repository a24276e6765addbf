export * from './common/index.js';
export * from './errors/index.js';
export * from './permission/index.js';
