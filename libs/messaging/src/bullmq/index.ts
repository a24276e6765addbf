export * from './connection.js';
// Processors throw it for a job that no retry can fix (a bad payload): it fails at once.
export { UnrecoverableError } from 'bullmq';
