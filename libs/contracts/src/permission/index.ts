export * from './permission.patterns.js';
export * from './permission.schemas.js';
export * from './launch-permission.schemas.js';
export * from './audit.schemas.js';
export * from './signing-key.schemas.js';
export * from './api-key.secret.js';
