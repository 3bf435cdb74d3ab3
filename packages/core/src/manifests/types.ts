import type { FieldIssue } from '../errors/app-error.js';
import type { JobRequest } from '../model/schema.js';

export type ManifestFormat = 'jsonl' | 'csv';

export interface ManifestLimits {
  /** Total bytes of the upload (MANIFEST_MAX_BYTES). */
  maxBytes: number;
  /** Data rows, valid or not; blank lines do not count (MANIFEST_MAX_ROWS). */
  maxRows: number;
  /**
   * How many row errors a caller reports (MANIFEST_MAX_ERRORS). The parser yields every invalid
   * row regardless, so a caller can still count them all; it only carries the setting along.
   */
  maxErrors: number;
  /** Bytes of one physical line, and of one CSV record (MANIFEST_MAX_LINE_BYTES). */
  maxLineBytes: number;
}

/**
 * One invalid row (or the CSV header). `path`/`message` are its first problem, `issues` all of
 * them: one item per row keeps "invalid rows" countable while the client still sees every field
 * to fix at once.
 */
export interface ManifestRowError {
  /** 1-based line of the row in the file (a CSV header is line 1). */
  line: number;
  /** The row's custom_id when it could be read, else null. */
  custom_id: string | null;
  /** The field (`images.1`), CSV column, `custom_id`, or `(line)` when the line itself is unreadable. */
  path: string;
  message: string;
  issues: FieldIssue[];
}

export interface ManifestRow {
  line: number;
  custom_id: string | null;
  /** Parsed and defaulted by the job schema, batch defaults merged under the row. */
  request: JobRequest;
}

export type ManifestItem = { ok: true; row: ManifestRow } | { ok: false; error: ManifestRowError };

/** A row as read from the file, before validation: format-specific problems already found. */
export interface RawRow {
  line: number;
  /** Undefined when the line could not be read as a row at all (broken JSON, bad CSV quoting). */
  fields?: Record<string, unknown>;
  issues: FieldIssue[];
  /** The CSV header's problems: reported like a row, not counted as one. */
  header?: true;
  /** Nothing after this row can be read (a CSV quoting error): the parser stops after it. */
  last?: true;
  /**
   * What to say when a field is still absent once batch defaults are merged (CSV: an empty
   * cell), instead of the job schema's message.
   */
  absent?: Record<string, string>;
}
