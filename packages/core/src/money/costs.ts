import type { Redis } from 'ioredis';
import { AppError } from '../errors/app-error.js';
import type { Keys } from '../infra/keys.js';
import { microUsdToUsd } from './price-table.js';

export const COST_GROUPS = ['day', 'month', 'resolution', 'tenant', 'batch'] as const;
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

/** The days of a report's range, checked (at most MAX_REPORT_DAYS). */
export function reportDays(query: Pick<CostQuery, 'from' | 'to'>): string[] {
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
  const days: string[] = [];
  for (let d = first; d <= last; d++) days.push(new Date(d * DAY_MS).toISOString().slice(0, 10));
  return days;
}

/** Where a figure counts: the dimensions a report may group by. */
export interface CostDims {
  day: string;
  resolution: string | null;
  tenant: string | null;
  /** null outside a batch. */
  batch: string | null;
}

export type CostMetric = keyof Acc;

/**
 * A report being summed: figures added under their dimensions, grouped as the query asks, rows in
 * a stable order. Both the live counters (Redis) and the history (PostgreSQL) fill one.
 */
export class CostTable {
  readonly groupBy: CostGroup[];
  private readonly groups = new Map<string, { dims: Partial<Record<CostGroup, string | null>>; acc: Acc }>();
  private readonly all: Acc = emptyAcc();

  constructor(private readonly query: CostQuery) {
    this.groupBy = COST_GROUPS.filter((g) => query.groupBy.includes(g));
  }

  /** Whether the query's tenant and batch filters let these dimensions in. */
  admits(dims: Pick<CostDims, 'tenant' | 'batch'>): boolean {
    if (this.query.tenant && dims.tenant !== this.query.tenant) return false;
    if (this.query.batch && dims.batch !== this.query.batch) return false;
    return true;
  }

  add(dims: CostDims, metric: CostMetric, n: number): void {
    if (!this.admits(dims)) return;
    const all: Record<CostGroup, string | null> = { ...dims, month: dims.day.slice(0, 7) };
    const key = this.groupBy.map((g) => all[g] ?? '').join('\u0000');
    let group = this.groups.get(key);
    if (!group) {
      group = { dims: Object.fromEntries(this.groupBy.map((g) => [g, all[g]])), acc: emptyAcc() };
      this.groups.set(key, group);
    }
    group.acc[metric] += n;
    this.all[metric] += n;
  }

  report(): CostReport {
    const rows = [...this.groups.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, g]) => ({ ...g.dims, ...totals(g.acc) }));
    return {
      from: this.query.from,
      to: this.query.to,
      group_by: this.groupBy,
      rows,
      total: totals(this.all),
    };
  }
}

/** Add a day's counters hash (`<resolution>|<tenant>|<batch>|<metric>` fields) to a table. */
export function addDayCounters(table: CostTable, day: string, hash: Record<string, string>): void {
  for (const [field, value] of Object.entries(hash)) {
    const [resolution, tenant, batch, metric] = field.split('|');
    const target = metric ? METRICS[metric] : undefined;
    if (!target) continue;
    table.add(
      {
        day,
        resolution: resolution ?? null,
        tenant: tenant ?? null,
        batch: batch === '-' ? null : (batch ?? null),
      },
      target,
      Number(value),
    );
  }
}

/**
 * Actual spend between two days from the live counters, grouped by any of day, month,
 * resolution, tenant and batch. Reads one counters hash per day (O(days × distinct groups)), never
 * the jobs themselves. (GET /v1/costs reads the history: see history/costs.ts.)
 */
export async function costReport(redis: Redis, keys: Keys, query: CostQuery): Promise<CostReport> {
  const days = reportDays(query);
  // The day's cost counters, and its billing-mismatch counters (same fields, metric `mismatches`).
  const pipeline = redis.pipeline();
  for (const day of days) pipeline.hgetall(keys.ledgerDay(day)).hgetall(keys.billingMismatchDay(day));
  const replies = (await pipeline.exec()) ?? [];
  const table = new CostTable(query);
  days.forEach((day, i) => {
    addDayCounters(table, day, (replies[2 * i]?.[1] ?? {}) as Record<string, string>);
    addDayCounters(table, day, (replies[2 * i + 1]?.[1] ?? {}) as Record<string, string>);
  });
  return table.report();
}
