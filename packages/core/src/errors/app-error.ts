/**
 * Stable, machine-readable error codes. Clients switch on these, so never rename one;
 * add new ones instead.
 */
export const ErrorCodes = [
  'VALIDATION_FAILED',
  /** The request's bytes could not be read as HTTP (a bad header line, say). */
  'MALFORMED_REQUEST',
  'HEADERS_TOO_LARGE',
  'REQUEST_TIMEOUT',
  /** A body (JSON, a form, a whole manifest) over its byte limit. */
  'PAYLOAD_TOO_LARGE',
  'MANIFEST_TOO_MANY_ROWS',
  'MANIFEST_LINE_TOO_LONG',
  'UNSUPPORTED_MEDIA_TYPE',
  'URL_REFUSED',
  'NOT_FOUND',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'RATE_LIMITED',
  'OVERLOADED',
  'CONFLICT',
  'JOB_FINISHED',
  'BUDGET_EXCEEDED',
  'IDEMPOTENCY_KEY_REUSED',
  'IDEMPOTENCY_IN_PROGRESS',
  'INVALID_TRANSITION',
  'CONFIG_INVALID',
  'REDIS_UNAVAILABLE',
  /** The PostgreSQL history is not reachable (archived records, the costs report). */
  'DATABASE_UNAVAILABLE',
  'BATCH_ARCHIVED',
  'AUDIT_UNAVAILABLE',
  /** An acknowledged write did not reach REDIS_WAIT_REPLICAS replicas in time (retryable: 503). */
  'REDIS_NOT_REPLICATED',
  'DNS_UNAVAILABLE',
  'PROVIDER_BAD_REQUEST',
  'PROVIDER_UNAUTHORIZED',
  'PROVIDER_FORBIDDEN',
  'PROVIDER_NOT_FOUND',
  'PROVIDER_REQUIREMENTS_NOT_MET',
  'PROVIDER_TASK_FAILED',
  'PROVIDER_RATE_LIMITED',
  'PROVIDER_UNAVAILABLE',
  'PROVIDER_TIMEOUT',
  'PROVIDER_BAD_RESPONSE',
  'FILE_TOO_LARGE',
  'FILE_TYPE_UNSUPPORTED',
  'FILE_UNREADABLE',
  'VIDEO_UNREADABLE',
  'FILE_UPLOADS_DISABLED',
  'UPLOAD_INCOMPLETE',
  'UPLOAD_EXPIRED',
  'OUTPUT_NOT_RETAINED',
  'RANGE_NOT_SATISFIABLE',
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ErrorCodes)[number];

export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `images.2` or `resolution`. */
  path: string;
  message: string;
  /** Manifest row errors only: the 1-based line of the row, and its custom_id (null when none). */
  line?: number;
  custom_id?: string | null;
}

export interface AppErrorOptions {
  statusCode?: number;
  retryable?: boolean;
  cause?: unknown;
  details?: Record<string, unknown>;
  issues?: FieldIssue[];
}

/** The one error class of Recast: a stable code, an HTTP status, and whether a retry may help. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;
  readonly issues: FieldIssue[] | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.statusCode = options.statusCode ?? 500;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
    this.issues = options.issues;
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      ...(this.issues ? { issues: this.issues } : {}),
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

export function assertNever(value: never, what = 'value'): never {
  throw new AppError('INTERNAL', `unexpected ${what}: ${JSON.stringify(value)}`);
}
