import type { components } from './generated/api.js';

/** One problem of a refused request: the field (or header, or manifest row) and what is wrong. */
export type Issue = NonNullable<components['schemas']['Error']['error']['issues']>[number];

/** Anything this client throws on purpose. */
export class RecastError extends Error {
  override readonly name: string = 'RecastError';
}

/**
 * A non-2xx answer. `code` is the API's stable error code (`VALIDATION_FAILED`, `NOT_FOUND`,
 * `BUDGET_EXCEEDED`…), `issues` names each field or manifest row refused; an answer without the
 * API's error body (a proxy's page) gets `HTTP_<status>`.
 */
export class RecastApiError extends RecastError {
  override readonly name = 'RecastApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: readonly Issue[] = [],
    readonly details: Record<string, unknown> = {},
    /** The answer's Retry-After, in seconds, when it gave one (429, 503). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }

  /** Worth trying again later: rate limited, overloaded, or a server-side failure. */
  get retryable(): boolean {
    return this.status === 429 || this.status >= 500;
  }

  static from(response: Response, body: unknown): RecastApiError {
    const retryAfter = Number(response.headers.get('retry-after') ?? Number.NaN);
    const seconds = Number.isFinite(retryAfter) ? retryAfter : undefined;
    const error = (body as { error?: unknown } | undefined)?.error as
      | { code?: unknown; message?: unknown; issues?: unknown; details?: unknown }
      | undefined;
    if (typeof error?.code === 'string' && typeof error.message === 'string') {
      return new RecastApiError(
        response.status,
        error.code,
        error.message,
        Array.isArray(error.issues) ? (error.issues as Issue[]) : [],
        typeof error.details === 'object' && error.details !== null
          ? (error.details as Record<string, unknown>)
          : {},
        seconds,
      );
    }
    const text = typeof body === 'string' ? body.trim().slice(0, 200) : '';
    return new RecastApiError(
      response.status,
      `HTTP_${response.status}`,
      text || `HTTP ${response.status}`,
      [],
      {},
      seconds,
    );
  }
}

/** The API could not be reached, or the connection broke before the answer was read. */
export class RecastNetworkError extends RecastError {
  override readonly name = 'RecastNetworkError';
}

/** A 2xx answer this client cannot read (not JSON: a proxy's page, a version mismatch). */
export class RecastUnexpectedResponseError extends RecastError {
  override readonly name = 'RecastUnexpectedResponseError';
}

/** What a transport failure says, with the underlying code (`ECONNREFUSED`, `UND_ERR_HEADERS_TIMEOUT`). */
export function describeCause(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describeCause(err.errors[0]);
  if (err instanceof Error) {
    if (err.message === 'fetch failed' && err.cause !== undefined) return describeCause(err.cause);
    const code = (err as Error & { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

export function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}
