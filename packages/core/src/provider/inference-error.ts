import { STATUS_CODES } from 'node:http';
import { AppError, type ErrorCode } from '../errors/app-error.js';
import { headerValue, type ResponseHeaders, retryAfterMs } from './rate-limit.js';
import { ProblemWireSchema, RequirementsWireSchema } from './wire-schemas.js';

export type ProviderErrorCode = Extract<ErrorCode, `PROVIDER_${string}`>;

/** Which call failed, for messages and logs (never headers: they carry the API key). */
export interface RequestContext {
  method: string;
  path: string;
}

export interface InferenceErrorOptions {
  detail: string;
  retryable: boolean;
  httpStatus?: number | undefined;
  problemType?: string | undefined;
  retryAfterMs?: number | undefined;
  requirements?: unknown[] | undefined;
  request?: RequestContext | undefined;
  cause?: unknown;
}

// What Recast's own API answers when a provider error bubbles up to one of its routes: the provider is
// an upstream, so its failures are gateway errors, not the client's.
const STATUS_FOR_CODE: Record<ProviderErrorCode, number> = {
  PROVIDER_BAD_REQUEST: 502,
  PROVIDER_UNAUTHORIZED: 502,
  PROVIDER_FORBIDDEN: 502,
  PROVIDER_NOT_FOUND: 502,
  PROVIDER_REQUIREMENTS_NOT_MET: 502,
  PROVIDER_TASK_FAILED: 502,
  PROVIDER_BAD_RESPONSE: 502,
  PROVIDER_RATE_LIMITED: 503,
  PROVIDER_UNAVAILABLE: 503,
  PROVIDER_TIMEOUT: 504,
};

const MAX_DETAIL_CHARS = 500;

function errorDetails(options: InferenceErrorOptions): Record<string, unknown> | undefined {
  const details: Record<string, unknown> = {};
  if (options.httpStatus !== undefined) details.httpStatus = options.httpStatus;
  if (options.problemType !== undefined) details.problemType = options.problemType;
  if (options.retryAfterMs !== undefined) details.retryAfterMs = options.retryAfterMs;
  return Object.keys(details).length > 0 ? details : undefined;
}

/** A failed call to the inference API, with everything a retry policy and a log line need. */
export class InferenceError extends AppError {
  declare readonly code: ProviderErrorCode;
  /** The provider's HTTP status; undefined when no answer came (network error, timeout). */
  readonly httpStatus: number | undefined;
  /** The problem code: last path segment of the problem+json `type` (e.g. `rate_limited`). */
  readonly problemType: string | undefined;
  /** Human text from the provider (detail, title, error.message, message) or ours. */
  readonly detail: string;
  /** How long the provider asked us to wait, clamped; undefined means "back off on your own". */
  readonly retryAfterMs: number | undefined;
  /** The unmet requirements of a 412, as sent. */
  readonly requirements: unknown[] | undefined;

  constructor(code: ProviderErrorCode, options: InferenceErrorOptions) {
    const where = options.request ? `${options.request.method} ${options.request.path}` : 'request';
    const status = options.httpStatus === undefined ? '' : ` (HTTP ${options.httpStatus})`;
    super(code, `inference API ${where} failed${status}: ${options.detail}`, {
      statusCode: STATUS_FOR_CODE[code],
      retryable: options.retryable,
      cause: options.cause,
      details: errorDetails(options),
    });
    this.name = 'InferenceError';
    this.httpStatus = options.httpStatus;
    this.problemType = options.problemType;
    this.detail = options.detail;
    this.retryAfterMs = options.retryAfterMs;
    this.requirements = options.requirements;
  }
}

export function isInferenceError(err: unknown): err is InferenceError {
  return err instanceof InferenceError;
}

/** The code and retryability an HTTP error status maps to. */
export function classifyHttpStatus(status: number): { code: ProviderErrorCode; retryable: boolean } {
  if (status === 401) return { code: 'PROVIDER_UNAUTHORIZED', retryable: false };
  if (status === 403) return { code: 'PROVIDER_FORBIDDEN', retryable: false };
  if (status === 404) return { code: 'PROVIDER_NOT_FOUND', retryable: false };
  if (status === 412) return { code: 'PROVIDER_REQUIREMENTS_NOT_MET', retryable: false };
  if (status === 422) return { code: 'PROVIDER_TASK_FAILED', retryable: false };
  if (status === 429) return { code: 'PROVIDER_RATE_LIMITED', retryable: true };
  if (status === 408 || status >= 500) return { code: 'PROVIDER_UNAVAILABLE', retryable: true };
  // Any other 4xx (400, 409, 410, 413...) says our request is wrong: repeating it will not help.
  if (status >= 400) return { code: 'PROVIDER_BAD_REQUEST', retryable: false };
  // 1xx/3xx reaching us means a redirect we do not follow or a broken proxy: an unexpected answer.
  return { code: 'PROVIDER_BAD_RESPONSE', retryable: true };
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function truncate(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_DETAIL_CHARS ? `${flat.slice(0, MAX_DETAIL_CHARS)}…` : flat;
}

/** `https://api.inference.sh/errors/rate_limited` → `rate_limited`; `about:blank` means "no type". */
function problemCode(type: string | null | undefined): string | undefined {
  if (!type || type === 'about:blank') return undefined;
  const segment = type
    .replace(/[/#?]+$/, '')
    .split(/[/#]/)
    .pop();
  return segment ? segment : undefined;
}

function requirementText(item: unknown): string {
  if (typeof item === 'string') return item;
  if (typeof item === 'object' && item !== null) {
    const record = item as Record<string, unknown>;
    if (typeof record.message === 'string' && record.message) return record.message;
    const named = [record.type, record.key].filter((part) => typeof part === 'string' && part).join(' ');
    if (named) return `missing ${named}`;
  }
  return JSON.stringify(item);
}

/** The provider's own words from an error body: detail → title → error.message → message. */
export function problemDetail(body: unknown): { detail?: string; problemType?: string } {
  const parsed = ProblemWireSchema.safeParse(body);
  if (!parsed.success) return {};
  const problem = parsed.data;
  const error = problem.error;
  const errorMessage = typeof error === 'string' ? error : (error?.message ?? undefined);
  const detail = [problem.detail, problem.title, errorMessage, problem.message].find(
    (text): text is string => typeof text === 'string' && text.trim() !== '',
  );
  const code =
    problemCode(problem.type) ?? (typeof error === 'object' ? (error?.code ?? undefined) : undefined);
  return {
    ...(detail === undefined ? {} : { detail: truncate(detail) }),
    ...(code ? { problemType: code } : {}),
  };
}

function fallbackDetail(status: number, headers: ResponseHeaders, text: string, body: unknown): string {
  const reason = `HTTP ${status}${STATUS_CODES[status] ? ` ${STATUS_CODES[status]}` : ''}`;
  // JSON without any human text, or an HTML error page (a proxy's 502), is noise in a log line: the
  // status says enough. Plain text is most likely a message written for humans: keep it.
  if (body !== undefined || /html/i.test(headerValue(headers, 'content-type') ?? '') || /^\s*</.test(text)) {
    return reason;
  }
  return text.trim() ? truncate(text) : reason;
}

/** Build the error for a non-2xx answer. */
export function errorFromResponse(
  status: number,
  headers: ResponseHeaders,
  text: string,
  request: RequestContext,
  maxRetryAfterMs?: number,
): InferenceError {
  const { code, retryable } = classifyHttpStatus(status);
  const body = parseJson(text);
  const problem = problemDetail(body);
  let detail = problem.detail ?? fallbackDetail(status, headers, text, body);
  let requirements: unknown[] | undefined;
  if (status === 412) {
    const unmet = RequirementsWireSchema.safeParse(body);
    if (unmet.success) {
      requirements = unmet.data.errors;
      const listed = requirements.map(requirementText).join('; ');
      detail = truncate(`requirements not met${listed ? `: ${listed}` : ''}`);
    }
  }
  const wait = retryable
    ? retryAfterMs(headers, {
        useRateLimitReset: status === 429,
        ...(maxRetryAfterMs === undefined ? {} : { maxMs: maxRetryAfterMs }),
      })
    : undefined;
  return new InferenceError(code, {
    detail,
    retryable,
    httpStatus: status,
    problemType: problem.problemType,
    retryAfterMs: wait,
    requirements,
    request,
  });
}

/** A v1 envelope that answered `success: false` inside a 2xx. */
export function errorFromEnvelope(
  envelope: Record<string, unknown>,
  httpStatus: number,
  request: RequestContext,
): InferenceError {
  const inner = typeof envelope.status === 'number' && envelope.status >= 400 ? envelope.status : undefined;
  const { code, retryable } =
    inner === undefined
      ? { code: 'PROVIDER_BAD_RESPONSE' as const, retryable: true }
      : classifyHttpStatus(inner);
  const problem = problemDetail(envelope);
  return new InferenceError(code, {
    detail: problem.detail ?? 'the provider answered success: false',
    retryable,
    httpStatus: inner ?? httpStatus,
    problemType: problem.problemType,
    request,
  });
}

/** A 2xx whose body we cannot use. Retryable: a proxy hiccup or a half-deployed provider is passing. */
export function badResponse(detail: string, httpStatus: number, request: RequestContext, cause?: unknown) {
  return new InferenceError('PROVIDER_BAD_RESPONSE', { detail, retryable: true, httpStatus, request, cause });
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  const visit = (value: unknown, depth: number): void => {
    if (depth > 3 || typeof value !== 'object' || value === null) return;
    const record = value as { code?: unknown; cause?: unknown; errors?: unknown };
    if (typeof record.code === 'string') codes.push(record.code);
    visit(record.cause, depth + 1);
    // Happy-eyeballs connects fail with an AggregateError holding one error per address.
    if (Array.isArray(record.errors)) for (const inner of record.errors) visit(inner, depth + 1);
  };
  visit(err, 0);
  return codes;
}

/** Classify a failure where no HTTP answer arrived. Every such failure is worth a retry. */
export function errorFromTransport(err: unknown, request: RequestContext, timedOut: boolean): InferenceError {
  const codes = errorCodes(err);
  const message = err instanceof Error ? err.message : String(err);
  if (timedOut || codes.some((code) => TIMEOUT_CODES.has(code))) {
    return new InferenceError('PROVIDER_TIMEOUT', {
      detail: `no answer in time (${codes[0] ?? 'deadline'})`,
      retryable: true,
      request,
      cause: err,
    });
  }
  if (codes.includes('UND_ERR_RES_EXCEEDED_MAX_SIZE')) {
    return new InferenceError('PROVIDER_BAD_RESPONSE', {
      detail: 'answer too large',
      retryable: true,
      request,
      cause: err,
    });
  }
  return new InferenceError('PROVIDER_UNAVAILABLE', {
    detail: `${codes[0] ?? 'network error'}: ${message || 'connection failed'}`,
    retryable: true,
    request,
    cause: err,
  });
}

/** Failures where the request cannot have left this machine (no connection was ever made). */
const NEVER_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Could the provider have acted on this request although no usable answer came back? A timeout,
 * a connection dropped mid-request, a 5xx (a gateway may time out after the origin accepted) or a
 * 2xx we could not read all may hide an accepted task; a 4xx or 429 is a refusal, and a failed
 * connect never sent anything. For `POST /apps/run` this decides between "submit again" and
 * "look for the task first" (a second submit is a second bill).
 */
export function mayHaveReachedProvider(error: InferenceError): boolean {
  if (error.httpStatus !== undefined) return error.httpStatus >= 500 || error.httpStatus < 400;
  return !errorCodes(error.cause).some((code) => NEVER_SENT_CODES.has(code));
}
