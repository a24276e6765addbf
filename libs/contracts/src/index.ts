export * from './billing/index.js';
export * from './bundling/index.js';
export * from './catalog/index.js';
export * from './common/index.js';
export * from './errors/index.js';
export * from './events/index.js';
export * from './permission/index.js';
