/** Tenants' event streams (job and batch state changes), read for GET /v1/events. */
export * from './events.js';
