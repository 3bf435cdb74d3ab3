import { AppError, assertNever } from '../errors/app-error.js';
import { createJobRequestSchema, DEFAULT_JOB_SCHEMA_LIMITS, type JobSchemaLimits } from '../model/schema.js';
import { csvRows } from './csv.js';
import { ManifestTooLargeError } from './errors.js';
import { fieldKinds } from './field-kinds.js';
import { jsonlRows } from './jsonl.js';
import { type ManifestSource, meteredChunks } from './metered-chunks.js';
import { checkDefaults, createRowValidator } from './row-validator.js';
import type { ManifestFormat, ManifestItem, ManifestLimits, RawRow } from './types.js';

export interface ParseManifestOptions {
  format: ManifestFormat;
  /** Batch-level fields merged under each row (the row wins); checked once up front (400). */
  defaults?: Record<string, unknown>;
  limits: ManifestLimits;
  schemaLimits?: JobSchemaLimits;
}

/**
 * Read a manifest (JSONL or CSV) as a stream and yield one item per row, in file order: a job
 * request parsed and defaulted by the job schema, or the row's problems. Nothing is buffered beyond
 * the line at hand, and the source is pulled only as fast as the caller takes items.
 *
 * Throws (the manifest as a whole is refused, rows already yielded included):
 * - `ManifestTooLargeError` (413) as soon as maxBytes, maxRows or maxLineBytes is passed; the
 *   source is not read any further.
 * - `AppError` VALIDATION_FAILED 400 for invalid `defaults`, and "manifest has no rows" when the
 *   file holds no row (empty, blank lines only, or a CSV header alone).
 *
 * CSV: a bad header (unknown, duplicate or unnamed column, or `images` with `images_N`) is one
 * error item on line 1 and ends the read; it is not a row, so it does not count against maxRows.
 */
export async function* parseManifest(
  source: ManifestSource,
  options: ParseManifestOptions,
): AsyncGenerator<ManifestItem, void, undefined> {
  const schemaLimits = options.schemaLimits ?? DEFAULT_JOB_SCHEMA_LIMITS;
  const schema = createJobRequestSchema(schemaLimits);
  checkDefaults(schema, options.defaults);
  const validate = createRowValidator(schema, options.defaults);
  const chunks = meteredChunks(source, options.limits);
  let raws: AsyncGenerator<RawRow>;
  switch (options.format) {
    case 'jsonl':
      raws = jsonlRows(chunks);
      break;
    case 'csv':
      raws = csvRows(chunks, fieldKinds(schema.shape), options.limits, schemaLimits.maxImages);
      break;
    default:
      assertNever(options.format, 'manifest format');
  }
  let rows = 0;
  let headerRefused = false;
  for await (const raw of raws) {
    if (raw.header) {
      headerRefused = true;
    } else if (++rows > options.limits.maxRows) {
      throw new ManifestTooLargeError('maxRows', options.limits.maxRows);
    }
    yield validate(raw);
  }
  if (rows === 0 && !headerRefused) {
    throw new AppError('VALIDATION_FAILED', 'manifest has no rows', { statusCode: 400 });
  }
}

export const JSONL_TYPES: ReadonlySet<string> = new Set([
  'application/x-ndjson',
  'application/ndjson',
  'application/jsonl',
  'application/x-jsonlines',
]);
const UTF8_CHARSETS = new Set(['utf-8', 'utf8', 'us-ascii']);

/**
 * The manifest format of a Content-Type, or undefined when it is neither JSONL nor CSV, or names a
 * charset other than UTF-8 (manifests are read as UTF-8; a Latin-1 CSV would be misread silently).
 */
export function formatFromContentType(contentType: string | undefined): ManifestFormat | undefined {
  if (contentType === undefined) return undefined;
  const [type = '', ...params] = contentType.split(';').map((part) => part.trim().toLowerCase());
  const charset = params.find((p) => p.startsWith('charset='))?.slice('charset='.length);
  if (charset !== undefined && !UTF8_CHARSETS.has(charset.replace(/"/g, ''))) return undefined;
  if (type === 'text/csv') return 'csv';
  if (JSONL_TYPES.has(type)) return 'jsonl';
  return undefined;
}
