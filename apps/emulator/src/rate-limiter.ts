import type { RateLimits } from './faults.js';

export type LimitGroup = 'run' | 'get' | 'upload';

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Epoch ms at which the current window ends. */
  resetAt: number;
}

interface Window {
  startedAt: number;
  count: number;
}

/**
 * Fixed windows per group, the simplest model that matches the documented "N per minute" and the
 * X-RateLimit-Reset header (one reset instant per window). One API key, so one set of windows.
 */
export class RateLimiter {
  private readonly windows = new Map<LimitGroup, Window>();

  constructor(
    private limits: RateLimits,
    private readonly now: () => number = Date.now,
  ) {}

  configure(limits: RateLimits): void {
    this.limits = limits;
    this.windows.clear();
  }

  reset(): void {
    this.windows.clear();
  }

  /** Counts one request; null when the group is not limited. */
  take(group: LimitGroup): RateDecision | null {
    if (this.limits === false) return null;
    const config = this.limits[group];
    if (config === false) return null;
    const now = this.now();
    let window = this.windows.get(group);
    if (!window || now >= window.startedAt + config.windowMs) {
      window = { startedAt: now, count: 0 };
      this.windows.set(group, window);
    }
    const resetAt = window.startedAt + config.windowMs;
    if (window.count >= config.limit) {
      return { allowed: false, limit: config.limit, remaining: 0, resetAt };
    }
    window.count += 1;
    return { allowed: true, limit: config.limit, remaining: config.limit - window.count, resetAt };
  }
}

export function rateLimitHeaders(decision: RateDecision): Record<string, string> {
  return {
    'x-ratelimit-limit': String(decision.limit),
    'x-ratelimit-remaining': String(decision.remaining),
    'x-ratelimit-reset': String(Math.ceil(decision.resetAt / 1000)),
  };
}

export function retryAfterSeconds(resetAt: number, now: number): string {
  return String(Math.max(1, Math.ceil((resetAt - now) / 1000)));
}
