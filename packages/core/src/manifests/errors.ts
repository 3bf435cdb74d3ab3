import { AppError } from '../errors/app-error.js';
import type { ManifestLimits } from './types.js';

export type ManifestLimitName = Exclude<keyof ManifestLimits, 'maxErrors'>;

const SETTING: Record<ManifestLimitName, string> = {
  maxBytes: 'MANIFEST_MAX_BYTES',
  maxRows: 'MANIFEST_MAX_ROWS',
  maxLineBytes: 'MANIFEST_MAX_LINE_BYTES',
};

/**
 * A manifest over one of its limits: the whole upload is refused (413), rows already yielded
 * included. `VALIDATION_FAILED` because ErrorCodes has no size code and codes are a stable set;
 * `details.limit` tells which limit, the message names the setting that raises it.
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
    super('VALIDATION_FAILED', `${what} (${SETTING[limit]})`, {
      statusCode: 413,
      details: { limit, value, ...(line !== undefined ? { line } : {}) },
    });
    this.name = 'ManifestTooLargeError';
    this.limit = limit;
  }
}
