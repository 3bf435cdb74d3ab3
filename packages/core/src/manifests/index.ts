/** Manifests: streaming JSONL and CSV parsing, row validation, limits and row errors. */

/** The job schema's limits rows are read with (a client pre-checking a manifest passes the deployment's). */
export { DEFAULT_JOB_SCHEMA_LIMITS, type JobSchemaLimits } from '../model/schema.js';
export * from './errors.js';
export type { ManifestSource } from './metered-chunks.js';
export * from './parse-manifest.js';
export type { ManifestFormat, ManifestItem, ManifestLimits, ManifestRow, ManifestRowError } from './types.js';
