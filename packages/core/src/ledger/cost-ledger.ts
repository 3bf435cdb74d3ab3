import type { Redis } from 'ioredis';
import type { Keys } from '../infra/keys.js';
import { loadLua } from '../infra/lua.js';
import { RESOLUTIONS, type Resolution } from '../jobs/schema.js';

export interface Charge {
  jobId: string;
  /** UTC calendar day the job settled on, YYYY-MM-DD. */
  day: string;
  resolution: Resolution;
  ms: number;
  microUsd: number;
  priceVersion: string;
}

export interface ResolutionTotals {
  ms: number;
  seconds: number;
  count: number;
  micro_usd: number;
}

export type DayTotals = Record<Resolution, ResolutionTotals>;

interface LedgerRedis extends Redis {
  recastCharge(charged: string, day: string, days: string, ...args: string[]): Promise<number>;
}

export function utcDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/**
 * Actual spend, counted once per job: seconds, job count and micro-dollars per UTC day ×
 * resolution, updated in O(1) per settled job. The charge is idempotent by job id, so a settle
 * that is retried after a crash, or run twice by a duplicate webhook, cannot pay twice.
 */
export class CostLedger {
  private readonly redis: LedgerRedis;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
  ) {
    if (!('recastCharge' in redis)) {
      redis.defineCommand('recastCharge', loadLua(new URL('./lua/charge-3.lua', import.meta.url)));
    }
    this.redis = redis as LedgerRedis;
  }

  /** Returns true when this call recorded the charge, false when it was already recorded. */
  async charge(charge: Charge): Promise<boolean> {
    for (const [name, value] of [
      ['ms', charge.ms],
      ['microUsd', charge.microUsd],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 0)
        throw new Error(`ledger ${name} must be a non-negative integer`);
    }
    const reply = await this.redis.recastCharge(
      this.keys.ledgerCharged(),
      this.keys.ledgerDay(charge.day),
      this.keys.ledgerDays(),
      charge.jobId,
      charge.day,
      charge.resolution,
      String(charge.ms),
      String(charge.microUsd),
      charge.priceVersion,
    );
    return reply === 1;
  }

  async chargeOf(jobId: string): Promise<Charge | undefined> {
    const entry = await this.redis.hget(this.keys.ledgerCharged(), jobId);
    if (!entry) return undefined;
    const [day, resolution, ms, microUsd, priceVersion] = entry.split('|');
    return {
      jobId,
      day: day!,
      resolution: resolution as Resolution,
      ms: Number(ms),
      microUsd: Number(microUsd),
      priceVersion: priceVersion!,
    };
  }

  async day(day: string): Promise<DayTotals> {
    const hash = await this.redis.hgetall(this.keys.ledgerDay(day));
    const totals = {} as DayTotals;
    for (const resolution of RESOLUTIONS) {
      const ms = Number(hash[`${resolution}:ms`] ?? 0);
      totals[resolution] = {
        ms,
        seconds: ms / 1000,
        count: Number(hash[`${resolution}:count`] ?? 0),
        micro_usd: Number(hash[`${resolution}:micro_usd`] ?? 0),
      };
    }
    return totals;
  }

  async days(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.ledgerDays())).sort();
  }
}
