/** Scheduling: the tenants' fair-share lines and the budget parking lot. */
export * from './fair-queue.js';
export * from './parking.js';
