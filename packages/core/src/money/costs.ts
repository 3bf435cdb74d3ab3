import type { Redis } from 'ioredis';
import { AppError } from '../errors/app-error.js';
import type { Keys } from '../infra/keys.js';
import { microUsdToUsd } from './price-table.js';

export const COST_GROUPS = ['day', 'resolution', 'tenant', 'batch'] as const;
export type CostGroup = (typeof COST_GROUPS)[number];

export interface CostQuery {
  /** First and last UTC day, inclusive, YYYY-MM-DD. */
  from: string;
  to: string;
  groupBy: readonly CostGroup[];
  /** Only this tenant's spend. */
  tenant?: string;
  /** Only this batch's spend. */
  batch?: string;
}

export interface CostTotals {
  seconds: number;
  jobs: number;
  micro_usd: number;
  usd: string;
  /** Jobs whose kept output's real duration was not what was billed (see files/retain.ts). */
  billing_mismatches: number;
  /**
   * Second provider tasks of a job that were billed (charged as `duplicate` lines): how many and
   * what they cost. Their seconds and micro-dollars are in the totals above too (the bill has
   * them); `jobs` counts billed runs without them.
   */
  duplicates: number;
  duplicate_micro_usd: number;
}

export type CostRow = Partial<Record<CostGroup, string | null>> & CostTotals;

export interface CostReport {
  from: string;
  to: string;
  group_by: CostGroup[];
  rows: CostRow[];
  total: CostTotals;
}

export const MAX_REPORT_DAYS = 366;
const DAY_MS = 86_400_000;

function dayNumber(day: string, field: string): number {
  const ms = Date.parse(`${day}T00:00:00Z`);
  if (
    !/^\d{4}-\d{2}-\d{2}$/.test(day) ||
    Number.isNaN(ms) ||
    new Date(ms).toISOString().slice(0, 10) !== day
  ) {
    throw new AppError('VALIDATION_FAILED', `invalid ${field} "${day}"`, {
      statusCode: 400,
      issues: [{ path: field, message: 'must be a UTC day, YYYY-MM-DD' }],
    });
  }
  return ms / DAY_MS;
}

interface Acc {
  ms: number;
  jobs: number;
  micro_usd: number;
  mismatches: number;
  duplicates: number;
  duplicate_micro_usd: number;
}

const emptyAcc = (): Acc => ({
  ms: 0,
  jobs: 0,
  micro_usd: 0,
  mismatches: 0,
  duplicates: 0,
  duplicate_micro_usd: 0,
});

/** The day hash's metric names (settle-n.lua, mismatch-2.lua) as totals. */
const METRICS: Record<string, keyof Acc> = {
  ms: 'ms',
  count: 'jobs',
  micro_usd: 'micro_usd',
  mismatches: 'mismatches',
  dup_count: 'duplicates',
  dup_micro_usd: 'duplicate_micro_usd',
};

function totals(acc: Acc): CostTotals {
  return {
    seconds: acc.ms / 1000,
    jobs: acc.jobs,
    micro_usd: acc.micro_usd,
    usd: microUsdToUsd(acc.micro_usd),
    billing_mismatches: acc.mismatches,
    duplicates: acc.duplicates,
    duplicate_micro_usd: acc.duplicate_micro_usd,
  };
}

/**
 * Actual spend between two days, grouped by any of day, resolution, tenant and batch. Reads one
 * counters hash per day (O(days × distinct groups)), never the jobs themselves.
 */
export async function costReport(redis: Redis, keys: Keys, query: CostQuery): Promise<CostReport> {
  const first = dayNumber(query.from, 'from');
  const last = dayNumber(query.to, 'to');
  if (last < first)
    throw new AppError('VALIDATION_FAILED', '`to` is before `from`', {
      statusCode: 400,
      issues: [{ path: 'to', message: 'must not be before from' }],
    });
  if (last - first + 1 > MAX_REPORT_DAYS)
    throw new AppError('VALIDATION_FAILED', `a report covers at most ${MAX_REPORT_DAYS} days`, {
      statusCode: 400,
      issues: [{ path: 'to', message: `at most ${MAX_REPORT_DAYS} days after from` }],
    });
  const groupBy = COST_GROUPS.filter((g) => query.groupBy.includes(g));
  const days: string[] = [];
  for (let d = first; d <= last; d++) days.push(new Date(d * DAY_MS).toISOString().slice(0, 10));

  // The day's cost counters, and its billing-mismatch counters (same fields, metric `mismatches`).
  const pipeline = redis.pipeline();
  for (const day of days) pipeline.hgetall(keys.ledgerDay(day)).hgetall(keys.billingMismatchDay(day));
  const replies = (await pipeline.exec()) ?? [];

  const groups = new Map<string, { dims: Partial<Record<CostGroup, string | null>>; acc: Acc }>();
  const all: Acc = emptyAcc();
  days.forEach((day, i) => {
    const hash = {
      ...((replies[2 * i]?.[1] ?? {}) as Record<string, string>),
      ...((replies[2 * i + 1]?.[1] ?? {}) as Record<string, string>),
    };
    for (const [field, value] of Object.entries(hash)) {
      const [resolution, tenant, batch, metric] = field.split('|');
      if (!metric || (query.tenant && tenant !== query.tenant)) continue;
      if (query.batch && batch !== query.batch) continue;
      const dims: Record<CostGroup, string | null> = {
        day,
        resolution: resolution ?? null,
        tenant: tenant ?? null,
        batch: batch === '-' ? null : (batch ?? null),
      };
      const key = groupBy.map((g) => dims[g] ?? '').join('\u0000');
      let group = groups.get(key);
      if (!group) {
        group = {
          dims: Object.fromEntries(groupBy.map((g) => [g, dims[g]])),
          acc: emptyAcc(),
        };
        groups.set(key, group);
      }
      const n = Number(value);
      const target = METRICS[metric];
      if (!target) continue;
      group.acc[target] += n;
      all[target] += n;
    }
  });
  const rows = [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, g]) => ({ ...g.dims, ...totals(g.acc) }));
  return { from: query.from, to: query.to, group_by: groupBy, rows, total: totals(all) };
}
