import type { Readable } from 'node:stream';
import { isAppError } from '@recast/core/errors';
import {
  DEFAULT_JOB_SCHEMA_LIMITS,
  type ManifestFormat,
  ManifestTooLargeError,
  parseManifest,
} from '@recast/core/manifests';
import { ApiError } from './exit-codes.js';
import type { Limits, RowError } from './schemas.js';

export interface PreflightOptions {
  format: ManifestFormat;
  limits: Limits;
  /** --defaults, merged under each row as the API does. */
  defaults?: Record<string, unknown>;
}

/**
 * Reads the manifest as the API will, before a byte of it (or of a local file) is sent: the same
 * parser (core's), with this deployment's limits from GET /v1/limits. A row or line limit passed
 * is refused here with the API's own code and message (exit 7), naming the line: a client still
 * writing into a connection the server has closed can meet a reset before it reads the 413. The
 * row errors are returned for the caller to show; the API stays the judge of what it accepts.
 */
export async function preflight(
  source: Readable,
  manifest: string,
  options: PreflightOptions,
): Promise<RowError[]> {
  const { limits } = options;
  const errors: RowError[] = [];
  try {
    for await (const item of parseManifest(source, {
      format: options.format,
      limits: {
        maxBytes: limits.manifest.max_bytes,
        maxRows: limits.manifest.max_rows,
        maxLineBytes: limits.manifest.max_line_bytes ?? Number.MAX_SAFE_INTEGER,
        maxErrors: Number.MAX_SAFE_INTEGER,
      },
      schemaLimits: {
        ...DEFAULT_JOB_SCHEMA_LIMITS,
        ...(limits.max_images ? { maxImages: limits.max_images } : {}),
        ...(limits.max_metadata_bytes !== undefined ? { maxMetadataBytes: limits.max_metadata_bytes } : {}),
      },
      ...(options.defaults ? { defaults: options.defaults } : {}),
    })) {
      if (item.ok) continue;
      const { line, custom_id } = item.error;
      for (const issue of item.error.issues)
        errors.push({ line, custom_id, path: issue.path, message: issue.message });
    }
  } catch (err) {
    source.destroy();
    if (err instanceof ManifestTooLargeError) {
      throw new ApiError(
        413,
        err.code,
        `${manifest}: ${err.message}; split it into several batches`,
        err.issues ?? [],
        {
          ...err.details,
        },
      );
    }
    // "no rows", bad defaults: the API says the same, in its own words; let it.
    if (isAppError(err) && err.statusCode === 400) return errors;
    throw err;
  }
  return errors;
}
