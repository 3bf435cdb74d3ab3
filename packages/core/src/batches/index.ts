export * from './batch-store.js';
export * from './cancel.js';
export * from './ingest.js';
export * from './retry.js';
export * from './view.js';
