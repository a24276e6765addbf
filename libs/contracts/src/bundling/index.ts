export * from './bundling.jobs.js';
