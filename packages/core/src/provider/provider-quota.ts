import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Keys } from '../infra/keys.js';
import { loadLua } from '../infra/lua.js';
import type { InferenceEndpoint, RequestAdmission, RequestTurn } from './inference-client.js';
import { InferenceError } from './inference-error.js';

const POLL_MS = 250;

/** The provider's per-account quotas besides submits (those are ProviderGate's). */
export type QuotaGroup = 'reads' | 'uploads';

/**
 * Reads that may wait behind the others: the reconciler's polls and orphan searches (a late one
 * only finds a lost webhook a little later). They take at most BACKGROUND_SHARE of the reads
 * window, so settle confirmations and cancels (which finish jobs and free slots and money) always
 * find room, however many quiet tasks there are to poll.
 */
export const BACKGROUND_ENDPOINTS: ReadonlySet<InferenceEndpoint> = new Set(['get_status', 'list']);
export const BACKGROUND_SHARE = 0.8;

/** Which quota a request counts against: the provider's `get` group holds every task route. */
export const QUOTA_OF_ENDPOINT: Partial<Record<InferenceEndpoint, QuotaGroup>> = {
  get_task: 'reads',
  get_status: 'reads',
  list: 'reads',
  cancel: 'reads',
  create_file: 'uploads',
};

export interface QuotaLimits {
  /** Requests allowed per window, across every process; 0 = no limit. */
  perWindow: number;
  windowMs: number;
  /** How long a request still in progress holds its place in the window: the client's timeout. */
  pendingHoldMs: number;
  /** How long a caller waits for its turn before it is refused (PROVIDER_RATE_LIMITED). */
  maxWaitMs: number;
  /** The pause of the whole group after a 429 that named no wait. */
  pauseAfter429Ms?: number;
}

interface QuotaRedis extends Redis {
  recastTakeQuota(log: string, pause: string, ...args: string[]): Promise<[1, number] | [0, string, number]>;
  recastSubmitted(log: string, pause: string, token: string, pauseMs: string): Promise<number>;
}

/**
 * One provider quota shared by every process through Redis (task reads: 1,000 a minute; uploads:
 * 50 a minute): a sliding log like the submits' (admit-4.lua), and a pause of the whole group after
 * a 429. A caller waits its turn, up to `maxWaitMs`, then gets a retryable PROVIDER_RATE_LIMITED
 * naming when to come back. Scheduling the provider's budgets is Recast's core; no limiter library
 * counts requests by when they reach the provider across processes (see take-2.lua).
 */
export class ProviderQuota {
  private readonly redis: QuotaRedis;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    readonly group: QuotaGroup,
    readonly limits: QuotaLimits,
  ) {
    if (!('recastTakeQuota' in redis)) {
      redis.defineCommand('recastTakeQuota', loadLua(new URL('./lua/take-2.lua', import.meta.url)));
    }
    if (!('recastSubmitted' in redis)) {
      redis.defineCommand('recastSubmitted', loadLua(new URL('./lua/submitted-2.lua', import.meta.url)));
    }
    this.redis = redis as QuotaRedis;
  }

  /**
   * Wait for a turn; undefined when the quota is off. The turn's end() must be called. A
   * `background` request takes only up to BACKGROUND_SHARE of the window (at least one place).
   */
  async take(what: string = this.group, background = false): Promise<RequestTurn | undefined> {
    if (this.limits.perWindow <= 0) return undefined;
    const reserved = background
      ? Math.min(this.limits.perWindow - 1, Math.ceil(this.limits.perWindow * (1 - BACKGROUND_SHARE)))
      : 0;
    const token = `${this.group}:${randomBytes(6).toString('hex')}`;
    const started = Date.now();
    for (;;) {
      const reply = await this.redis.recastTakeQuota(
        this.keys.limitsQuota(this.group),
        this.keys.limitsQuotaPause(this.group),
        String(this.limits.perWindow),
        String(this.limits.windowMs),
        String(this.limits.pendingHoldMs),
        token,
        String(reserved),
      );
      if (reply[0] === 1) return { end: (rateLimited) => this.end(token, rateLimited) };
      const waitMs = Number(reply[2]);
      const waited = Date.now() - started;
      if (waited >= this.limits.maxWaitMs) {
        throw new InferenceError('PROVIDER_RATE_LIMITED', {
          detail: `the provider's ${this.group} quota (${this.limits.perWindow} per ${this.limits.windowMs} ms) has no room for ${what} within ${this.limits.maxWaitMs} ms (${reply[1] === 'paused' ? 'paused after a 429' : 'window full'})`,
          retryable: true,
          retryAfterMs: waitMs,
        });
      }
      // The wait named is an upper bound while requests are in progress (each holds its place
      // until it ends, and most end well before their timeout): ask again every quarter second
      // at most, until the bound. A little jitter, so callers do not all ask in the same instant.
      await sleep(Math.min(waitMs, POLL_MS, this.limits.maxWaitMs - waited) + Math.floor(Math.random() * 20));
    }
  }

  /** Requests counted in the current window (including ones still in progress). */
  async inWindow(): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    return this.redis.zcount(this.keys.limitsQuota(this.group), now - this.limits.windowMs, '+inf');
  }

  /** Until when the group is paused after a 429 (ms since the epoch), or undefined. */
  async pausedUntil(): Promise<number | undefined> {
    const until = Number(await this.redis.get(this.keys.limitsQuotaPause(this.group)));
    return until > Date.now() ? until : undefined;
  }

  private async end(token: string, rateLimited: { retryAfterMs?: number | undefined } | undefined) {
    const pauseMs = rateLimited ? (rateLimited.retryAfterMs ?? this.limits.pauseAfter429Ms ?? 1000) : 0;
    await this.redis.recastSubmitted(
      this.keys.limitsQuota(this.group),
      this.keys.limitsQuotaPause(this.group),
      token,
      String(Math.max(0, Math.ceil(pauseMs))),
    );
  }
}

/** The client's admission over the quotas: each request waits its turn in the quota it counts against. */
export function quotaAdmission(quotas: Partial<Record<QuotaGroup, ProviderQuota>>): RequestAdmission {
  return (endpoint) => {
    const group = QUOTA_OF_ENDPOINT[endpoint];
    const quota = group ? quotas[group] : undefined;
    return quota ? quota.take(endpoint, BACKGROUND_ENDPOINTS.has(endpoint)) : Promise.resolve(undefined);
  };
}
