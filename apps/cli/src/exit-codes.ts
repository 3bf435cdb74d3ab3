import { RecastApiError as ApiError, RecastNetworkError as UnreachableError } from '@recast/client';

/** Exit codes a script can rely on; stable, documented in `recast --help` and the README. */
export const EXIT = {
  OK: 0,
  UNEXPECTED: 1,
  USAGE: 2,
  VALIDATION: 3,
  NOT_FOUND: 4,
  FINISHED_WITH_ERRORS: 5,
  UNAVAILABLE: 6,
  TOO_LARGE: 7,
  /** 401/403: no key, an unknown or revoked key, or a role that may not do this. */
  NOT_ALLOWED: 8,
  /** 429: the key's request rate is used up; retry after a while. */
  RATE_LIMITED: 9,
  /** The shell's convention for SIGINT (128 + 2): Ctrl-C stopped the command, not the batch. */
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODES_HELP = `Exit codes:
  0   success
  1   unexpected error
  2   usage error (bad flags or arguments; local files a manifest may not name, or cannot be read)
  3   validation failed (400/415/422: the manifest or a parameter was rejected)
  4   not found (404: no such batch for this tenant)
  5   the batch finished with errors (completed_with_errors, cancelled or expired) under --watch
  6   server unreachable, timed out, or a 5xx answer
  7   payload too large (413: the manifest is over a byte, row or line limit)
  8   not allowed (401/403: no key, an unknown or revoked key, or a role that may not do this)
  9   rate limited (429: retry later)
  130 interrupted (Ctrl-C); a batch already accepted goes on`;

/** A bad flag, argument or file found before anything was sent. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * An HTTP answer that is not a success, with the API's error body when it had one (`code`,
 * `issues` with `line` and `custom_id` on a manifest's row errors, `details`): the typed client's.
 */
export {
  RecastApiError as ApiError,
  /** The server could not be reached or did not answer in time. */
  RecastNetworkError as UnreachableError,
  /** The server answered something this CLI does not understand (a version mismatch, a proxy page). */
  RecastUnexpectedResponseError as UnexpectedResponseError,
} from '@recast/client';

/**
 * Rows of a manifest refused before anything was sent: local paths the CLI will not read (a usage
 * error, exit 2) or rows the API would refuse (exit 3). Every one is listed, with line and field.
 */
export class RowsError extends Error {
  override readonly name = 'RowsError';
  constructor(
    message: string,
    readonly rows: readonly { line: number; custom_id: string | null; path: string; message: string }[],
    readonly exitCode: 2 | 3,
  ) {
    super(message);
  }
}

export function exitCodeForStatus(status: number): ExitCode {
  if (status === 404) return EXIT.NOT_FOUND;
  if (status === 413) return EXIT.TOO_LARGE;
  if (status === 401 || status === 403) return EXIT.NOT_ALLOWED;
  if (status === 429) return EXIT.RATE_LIMITED;
  if (status === 400 || status === 415 || status === 422) return EXIT.VALIDATION;
  if (status >= 500) return EXIT.UNAVAILABLE;
  return EXIT.UNEXPECTED;
}

export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof UsageError) return EXIT.USAGE;
  if (err instanceof RowsError) return err.exitCode;
  if (err instanceof ApiError) return exitCodeForStatus(err.status);
  if (err instanceof UnreachableError) return EXIT.UNAVAILABLE;
  return EXIT.UNEXPECTED;
}
