import { AppError, type FieldIssue } from '../errors/app-error.js';
import type { ManifestLimits, ManifestRowError } from './types.js';

export type ManifestLimitName = Exclude<keyof ManifestLimits, 'maxErrors'>;

const SETTING: Record<ManifestLimitName, string> = {
  maxBytes: 'MANIFEST_MAX_BYTES',
  maxRows: 'MANIFEST_MAX_ROWS',
  maxLineBytes: 'MANIFEST_MAX_LINE_BYTES',
};

const CODE = {
  maxBytes: 'PAYLOAD_TOO_LARGE',
  maxRows: 'MANIFEST_TOO_MANY_ROWS',
  maxLineBytes: 'MANIFEST_LINE_TOO_LONG',
} as const;

/**
 * A manifest over one of its limits: the whole upload is refused (413), rows already yielded
 * included. Each limit has its code; `details.limit` tells which limit too, and the message names
 * the setting that raises it (and the line, for a line too long).
 */
export class ManifestTooLargeError extends AppError {
  readonly limit: ManifestLimitName;

  constructor(limit: ManifestLimitName, value: number, line?: number) {
    const what =
      limit === 'maxRows'
        ? `manifest exceeds ${value} rows`
        : limit === 'maxBytes'
          ? `manifest exceeds ${value} bytes`
          : `manifest line ${line ?? '?'} exceeds ${value} bytes`;
    super(CODE[limit], `${what} (${SETTING[limit]})`, {
      statusCode: 413,
      details: { limit, value, ...(line !== undefined ? { line } : {}) },
      issues: [
        {
          path: line === undefined ? '(manifest)' : '(line)',
          message: `over ${SETTING[limit]} (${value}${limit === 'maxRows' ? ' rows' : ' bytes'})`,
          ...(line !== undefined ? { line, custom_id: null } : {}),
        },
      ],
    });
    this.name = 'ManifestTooLargeError';
    this.limit = limit;
  }
}

/**
 * A manifest refused for its rows (422): every problem of every reported row in `error.issues`,
 * one entry each with the row's `line` and `custom_id` beside `path` and `message`, the shape of
 * every other error's issues. `details` counts the invalid rows (all of them, reported or not).
 */
export function rowsRefused(
  message: string,
  rows: { invalid_rows: number; errors: readonly ManifestRowError[]; errors_truncated: boolean },
): AppError {
  const issues: FieldIssue[] = rows.errors.flatMap((row) =>
    (row.issues.length > 0 ? row.issues : [{ path: row.path, message: row.message }]).map((issue) => ({
      line: row.line,
      custom_id: row.custom_id,
      path: issue.path,
      message: issue.message,
    })),
  );
  return new AppError('VALIDATION_FAILED', message, {
    statusCode: 422,
    issues,
    details: { invalid_rows: rows.invalid_rows, errors_truncated: rows.errors_truncated },
  });
}
