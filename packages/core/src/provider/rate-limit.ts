/** Response headers as undici hands them over. */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** What the provider said about our rate budget on its latest answer. */
export interface RateLimitInfo {
  /** `X-RateLimit-Limit`, when sent (undocumented, but common). */
  limit: number | undefined;
  /** `X-RateLimit-Remaining`: requests left in the current window. */
  remaining: number | undefined;
  /** `X-RateLimit-Reset` as epoch milliseconds: when the window resets. */
  resetAtMs: number | undefined;
  /** The HTTP status of the answer that carried the headers. */
  httpStatus: number;
  /** When we saw it (epoch milliseconds). */
  observedAtMs: number;
}

/** Sleeping longer than this on a provider's word is more likely a bad header than a real limit. */
export const DEFAULT_MAX_RETRY_AFTER_MS = 10 * 60_000;

// A unix time in seconds is above 1e9 since 2001; anything smaller must be a delta in seconds, which
// some APIs send in X-RateLimit-Reset despite the docs saying unix seconds.
const EPOCH_SECONDS_FLOOR = 1e9;

export function headerValue(headers: ResponseHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  const first = Array.isArray(value) ? value[0] : value;
  const trimmed = first?.trim();
  return trimmed ? trimmed : undefined;
}

function headerNumber(headers: ResponseHeaders, name: string): number | undefined {
  const text = headerValue(headers, name);
  if (text === undefined || !/^\d+(\.\d+)?$/.test(text)) return undefined;
  return Number(text);
}

function resetAtMs(headers: ResponseHeaders, nowMs: number): number | undefined {
  const reset = headerNumber(headers, 'x-ratelimit-reset');
  if (reset === undefined) return undefined;
  return reset >= EPOCH_SECONDS_FLOOR ? reset * 1000 : nowMs + reset * 1000;
}

/** Rate-limit headers of any answer, or undefined when it carried none. */
export function readRateLimit(
  headers: ResponseHeaders,
  httpStatus: number,
  nowMs = Date.now(),
): RateLimitInfo | undefined {
  const info: RateLimitInfo = {
    limit: headerNumber(headers, 'x-ratelimit-limit'),
    remaining: headerNumber(headers, 'x-ratelimit-remaining'),
    resetAtMs: resetAtMs(headers, nowMs),
    httpStatus,
    observedAtMs: nowMs,
  };
  if (info.limit === undefined && info.remaining === undefined && info.resetAtMs === undefined)
    return undefined;
  return info;
}

function clamp(ms: number, maxMs: number): number {
  return Math.min(Math.max(0, Math.round(ms)), maxMs);
}

/**
 * How long the provider asks us to wait. `Retry-After` (delta-seconds or an HTTP-date) is not documented
 * but wins when present; for a 429 the documented `X-RateLimit-Reset` is the fallback. Undefined means
 * "no hint": the caller backs off on its own (exponential with jitter).
 */
export function retryAfterMs(
  headers: ResponseHeaders,
  options: { useRateLimitReset: boolean; maxMs?: number; nowMs?: number },
): number | undefined {
  const nowMs = options.nowMs ?? Date.now();
  const maxMs = options.maxMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  const retryAfter = headerValue(headers, 'retry-after');
  if (retryAfter !== undefined) {
    if (/^\d+(\.\d+)?$/.test(retryAfter)) return clamp(Number(retryAfter) * 1000, maxMs);
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return clamp(date - nowMs, maxMs);
  }
  if (!options.useRateLimitReset) return undefined;
  const reset = resetAtMs(headers, nowMs);
  return reset === undefined ? undefined : clamp(reset - nowMs, maxMs);
}

/**
 * How long to wait after a 429 that named no wait (neither Retry-After nor X-RateLimit-Reset):
 * exponential backoff with full jitter, as the provider's docs ask. Each such 429 in a row
 * doubles the ceiling, from `baseMs` up to `maxMs`; a call that gets through resets it.
 */
export class RateLimitBackoff {
  private streak = 0;

  constructor(
    private readonly baseMs: number,
    private readonly maxMs = 60_000,
    private readonly random: () => number = Math.random,
  ) {}

  /** The wait for one more 429 without a named wait: between half the ceiling and all of it. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.streak, 30));
    this.streak++;
    return Math.round(ceiling / 2 + this.random() * (ceiling / 2));
  }

  reset(): void {
    this.streak = 0;
  }
}
