export * from './billing.patterns.js';
export * from './billing.schemas.js';
export * from './money.js';
