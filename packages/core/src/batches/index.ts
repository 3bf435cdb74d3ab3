/** Batches: a manifest ingested as rows, its record and counters, its view, cancel and retry. */
export * from './batch-store.js';
export * from './cancel.js';
export * from './expire.js';
export * from './ingest.js';
export * from './retry.js';
export * from './view.js';
