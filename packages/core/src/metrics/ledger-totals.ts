import type { Redis } from 'ioredis';
import type { Keys } from '../infra/keys.js';
import { utcDay } from '../money/ledger.js';

export interface LedgerResolutionTotals {
  ms: number;
  jobs: number;
  microUsd: number;
}

export type LedgerTotalsByResolution = Map<string, LedgerResolutionTotals>;

const DAY_MS = 86_400_000;

/**
 * Spend, billed time and billed jobs by resolution since the ledger began, read from the ledger's
 * per-day counters (settle-n.lua writes `<resolution>|<tenant>|<batch>|<ms|count|micro_usd>` in a
 * hash per day, and the day into a set). These are exact and survive restarts, unlike counters
 * kept in memory, and a per-process sum would double count once there are several workers.
 *
 * Cheap at scrape time: the days before yesterday are read once per process and remembered;
 * each scrape then reads the set of days and the hashes of today and yesterday only. A charge
 * counts on the day its job finished, and a settle retries for minutes, not days, so only today's
 * and yesterday's hashes still move (one that moved later is picked up by the next process).
 */
export class LedgerTotals {
  private readonly closedDays = new Map<string, LedgerTotalsByResolution>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async read(now = new Date()): Promise<LedgerTotalsByResolution> {
    const yesterday = utcDay(new Date(now.getTime() - DAY_MS));
    const days = await this.redis.smembers(this.keys.ledgerDays());
    // YYYY-MM-DD sorts as text; a day "after today" (another process's clock) is read every time.
    const toRead = days.filter((day) => day >= yesterday || !this.closedDays.has(day));
    const pipeline = this.redis.pipeline();
    for (const day of toRead) pipeline.hgetall(this.keys.ledgerDay(day));
    const replies = toRead.length ? ((await pipeline.exec()) ?? []) : [];
    const fresh = new Map<string, LedgerTotalsByResolution>();
    toRead.forEach((day, i) => {
      const [err, hash] = replies[i] ?? [];
      if (err) throw err;
      const totals = dayTotals((hash ?? {}) as Record<string, string>);
      if (day < yesterday) this.closedDays.set(day, totals);
      else fresh.set(day, totals);
    });
    const sum: LedgerTotalsByResolution = new Map();
    for (const day of days) {
      for (const [resolution, t] of fresh.get(day) ?? this.closedDays.get(day) ?? []) {
        const acc = sum.get(resolution) ?? { ms: 0, jobs: 0, microUsd: 0 };
        acc.ms += t.ms;
        acc.jobs += t.jobs;
        acc.microUsd += t.microUsd;
        sum.set(resolution, acc);
      }
    }
    return sum;
  }
}

function dayTotals(hash: Record<string, string>): LedgerTotalsByResolution {
  const totals: LedgerTotalsByResolution = new Map();
  for (const [field, value] of Object.entries(hash)) {
    const parts = field.split('|');
    const resolution = parts[0];
    const metric = parts[parts.length - 1];
    if (parts.length < 4 || !resolution) continue;
    const acc = totals.get(resolution) ?? { ms: 0, jobs: 0, microUsd: 0 };
    const n = Number(value);
    if (metric === 'ms') acc.ms += n;
    else if (metric === 'count') acc.jobs += n;
    else if (metric === 'micro_usd') acc.microUsd += n;
    else continue;
    totals.set(resolution, acc);
  }
  return totals;
}
