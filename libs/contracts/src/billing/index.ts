export * from './billing.patterns.js';
export * from './billing.schemas.js';
export * from './money.js';
export * from './usage.schemas.js';
export * from './invoices.schemas.js';
export * from './revenue.schemas.js';
export * from './stripe.schemas.js';
