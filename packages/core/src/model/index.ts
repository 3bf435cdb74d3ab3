/** The model: what a job and a batch are (schemas, states, records), their ids, and every queue. */
export * from './access.js';
export * from './catalog.js';
export * from './ids.js';
export * from './job-list.js';
export * from './job-store.js';
export * from './json-input.js';
export * from './record.js';
export * from './schema.js';
export * from './states.js';
