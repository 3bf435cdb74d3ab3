/** RFC 9457 problem details, the provider's error format. */
export type ProblemCode =
  | 'invalid_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'task_failed'
  | 'rate_limited'
  | 'internal_error';

const TITLES: Record<ProblemCode, string> = {
  invalid_request: 'Invalid request',
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  task_failed: 'Task did not complete',
  rate_limited: 'Too many requests',
  internal_error: 'Internal server error',
};

export const PROBLEM_TYPE_BASE = 'https://api.inference.sh/errors/';

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
}

export class ProblemError extends Error {
  readonly headers: Record<string, string>;

  constructor(
    readonly status: number,
    readonly code: ProblemCode,
    readonly detail: string,
    headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = 'ProblemError';
    this.headers = headers;
  }

  toBody(): ProblemBody {
    return problemBody(this.status, this.code, this.detail);
  }
}

export function problemBody(status: number, code: ProblemCode, detail: string): ProblemBody {
  return { type: `${PROBLEM_TYPE_BASE}${code}`, title: TITLES[code], status, detail };
}

export function codeForStatus(status: number): ProblemCode {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'internal_error';
  return 'invalid_request';
}
