export * from './bundling.jobs.js';
export * from './platform-keys.js';
