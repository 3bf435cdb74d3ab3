import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keys } from '../infra/keys.js';
import { loadLua } from '../infra/lua.js';

export interface ProviderLimits {
  /** Submits (POST /apps/run) allowed per window, across all workers; 0 = no limit. */
  submitsPerWindow: number;
  windowMs: number;
  /** Tasks in flight at the provider (submitted, not yet terminal); 0 = no cap. */
  maxInFlight: number;
  /** How long a submit still in progress holds its place in the window: the client's timeout. */
  pendingHoldMs: number;
  /**
   * Submits are paced at windowMs / submitsPerWindow apart on average; this many may go back to
   * back after a quiet spell. 0: no pacing (the window's whole limit may go at once).
   */
  burst?: number;
}

export type Admission =
  | { ok: true; token: string }
  | { ok: false; reason: 'paused' | 'in_flight' | 'rate'; waitMs: number };

interface GateRedis extends Redis {
  recastAdmit(
    inFlight: string,
    rate: string,
    pause: string,
    pace: string,
    ...args: string[]
  ): Promise<[1, number] | [0, string, number]>;
  recastSubmitted(rate: string, pause: string, token: string, pauseMs: string): Promise<number>;
}

/**
 * Pressure on the provider, shared by every worker through Redis: a sliding-log limit on submits
 * per window, a cap on tasks in flight, and a global pause after a 429. Scheduling is Recast's
 * core, and BullMQ's own limiter counts jobs started, not requests that reach the provider, so
 * this is ours (see admit-4.lua for why it cannot overshoot, and how it paces).
 */
export class ProviderGate {
  private readonly redis: GateRedis;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    readonly limits: ProviderLimits,
  ) {
    if (!('recastAdmit' in redis)) {
      redis.defineCommand('recastAdmit', loadLua(new URL('./lua/admit-4.lua', import.meta.url)));
      redis.defineCommand('recastSubmitted', loadLua(new URL('./lua/submitted-2.lua', import.meta.url)));
    }
    this.redis = redis as GateRedis;
  }

  /** Ask to submit `jobId` now. On success the job holds an in-flight slot until release(). */
  async admit(jobId: string): Promise<Admission> {
    const token = `${jobId}:${randomBytes(6).toString('hex')}`;
    const reply = await this.redis.recastAdmit(
      this.keys.limitsInFlight(),
      this.keys.limitsRate(),
      this.keys.limitsPause(),
      this.keys.limitsPace(),
      jobId,
      String(this.limits.maxInFlight),
      String(this.limits.submitsPerWindow),
      String(this.limits.windowMs),
      String(this.limits.pendingHoldMs),
      token,
      String(Math.min(this.limits.burst ?? 0, this.limits.submitsPerWindow)),
    );
    if (reply[0] === 1) return { ok: true, token };
    return { ok: false, reason: reply[1] as 'paused' | 'in_flight' | 'rate', waitMs: Number(reply[2]) };
  }

  /** The submit admitted under `token` has ended; `pauseMs` > 0 pauses every worker (a 429). */
  async submitted(token: string, pauseMs = 0): Promise<void> {
    await this.redis.recastSubmitted(
      this.keys.limitsRate(),
      this.keys.limitsPause(),
      token,
      String(Math.max(0, Math.ceil(pauseMs))),
    );
  }

  /** The job's task is terminal (or was never accepted): free its in-flight slot. */
  async release(jobId: string): Promise<boolean> {
    return (await this.redis.zrem(this.keys.limitsInFlight(), jobId)) === 1;
  }

  async inFlight(): Promise<number> {
    return this.redis.zcard(this.keys.limitsInFlight());
  }

  /** Submits counted in the current window (including ones still in progress). */
  async submitsInWindow(): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    return this.redis.zcount(this.keys.limitsRate(), now - this.limits.windowMs, '+inf');
  }

  /**
   * The pressure on the provider as forecasts need it, in one round trip: the server's now, the
   * tasks in flight with when each took its slot (the first `max`), how many there are, and until
   * when the provider is paused after a 429 (null when it is not).
   */
  async pressure(max = 2_000): Promise<{
    now: number;
    inFlight: Array<{ jobId: string; since: number }>;
    inFlightCount: number;
    pausedUntil: number | null;
  }> {
    const replies =
      (await this.redis
        .pipeline()
        .time()
        .zrange(this.keys.limitsInFlight(), 0, max - 1, 'WITHSCORES')
        .zcard(this.keys.limitsInFlight())
        .get(this.keys.limitsPause())
        .exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
    const [seconds, micros] = (replies[0]?.[1] ?? ['0', '0']) as [string, string];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const flat = (replies[1]?.[1] ?? []) as string[];
    const inFlight: Array<{ jobId: string; since: number }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2)
      inFlight.push({ jobId: flat[i] as string, since: Number(flat[i + 1]) });
    const paused = Number(replies[3]?.[1] ?? 0);
    return {
      now,
      inFlight,
      inFlightCount: Number(replies[2]?.[1] ?? 0),
      pausedUntil: paused > now ? paused : null,
    };
  }

  /** Slots held longer than `olderThanMs`: candidates for recovery when their job was lost. */
  async heldSince(olderThanMs: number, max = 500): Promise<string[]> {
    const [seconds] = await this.redis.time();
    return this.redis.zrangebyscore(
      this.keys.limitsInFlight(),
      '-inf',
      Number(seconds) * 1000 - olderThanMs,
      'LIMIT',
      0,
      max,
    );
  }
}
