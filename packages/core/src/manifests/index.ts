/** Manifests: streaming JSONL and CSV parsing, row validation, limits and row errors. */
export * from './errors.js';
export type { ManifestSource } from './metered-chunks.js';
export * from './parse-manifest.js';
export type { ManifestFormat, ManifestItem, ManifestLimits, ManifestRow, ManifestRowError } from './types.js';
