import type { Redis } from 'ioredis';
import type { Keys } from '../infra/keys.js';
import {
  addDayCounters,
  type CostQuery,
  type CostReport,
  CostTable,
  costReport,
  reportDays,
} from '../money/costs.js';
import { parseChargeEntry } from '../money/ledger.js';
import { asDatabaseError, type Database } from './db.js';
import { type LineItem, lineItemOf } from './writes.js';

/** A report, and where its money figures came from. */
export type SourcedCostReport = CostReport & { source: 'history' | 'live' };

/** Most charges read from the outbox for one report; past this, the live counters answer. */
const MAX_PENDING = 50_000;

/**
 * Actual spend computed from the ledger's line items: the daily sums the archiver keeps beside
 * them in PostgreSQL (the same statement that inserts a line item adds it, so the two never
 * disagree), plus the charges still on the outbox (recorded, not archived yet), so the report
 * is exact at any moment and equals the Redis counters over the period both cover. Billing
 * mismatches (kept outputs whose duration was not what was billed) come from the live counters.
 * While the database is unreachable, or the outbox is too deep to read, the live counters answer
 * alone (`source: "live"`).
 *
 * The order of the reads is what makes it exact while the archiver runs: the outbox is read
 * first, then the sums and "which of those outbox charges are written already" in one snapshot.
 * The archiver writes a charge before it takes it off the outbox, so a charge is either in the
 * snapshot (counted there) or still on the outbox as read (counted from it), never in neither or
 * both.
 */
export async function historyCostReport(
  db: Database,
  redis: Redis,
  keys: Keys,
  query: CostQuery,
): Promise<SourcedCostReport> {
  const days = reportDays(query);
  try {
    const outbox = await readOutbox(redis, keys);
    if (outbox === undefined) return { ...(await costReport(redis, keys, query)), source: 'live' };
    const table = new CostTable(query);
    const values: unknown[] = [days[0], days.at(-1)];
    const filters: string[] = [];
    if (query.tenant) {
      values.push(query.tenant);
      filters.push(`tenant = $${values.length}`);
    }
    if (query.batch) {
      values.push(query.batch);
      filters.push(`batch_id = $${values.length}`);
    }
    const snapshot = await db.openSnapshot();
    let rows: {
      day: string;
      tenant: string | null;
      batch_id: string;
      resolution: string | null;
      billed_ms: number;
      runs: number;
      micro_usd: number;
      duplicates: number;
      duplicate_micro_usd: number;
    }[];
    let pending: LineItem[];
    try {
      // Summed in PostgreSQL to the report's own grouping (a month of a busy deployment is tens of
      // thousands of daily sums: they never leave the server one by one). The days are checked
      // (reportDays) before they are written into the statement. A dimension the report
      // neither groups nor filters by is summed away; without `day`, days are summed into months
      // (a month's first day stands for it), or into one row when the report groups by neither.
      const wants = (g: string) => query.groupBy.includes(g as never);
      const dayExpr = wants('day')
        ? "to_char(day, 'YYYY-MM-DD')"
        : wants('month')
          ? "to_char(date_trunc('month', day), 'YYYY-MM-DD')"
          : `'${days[0]}'::text`;
      const resolutionExpr = wants('resolution') ? 'resolution' : 'NULL::text';
      const tenantExpr = wants('tenant') || query.tenant ? 'tenant' : 'NULL::text';
      const batchExpr = wants('batch') || query.batch ? 'batch_id' : "'-'::text";
      ({ rows } = await snapshot.query(
        `SELECT ${dayExpr} AS day, ${tenantExpr} AS tenant, ${batchExpr} AS batch_id,
           ${resolutionExpr} AS resolution, sum(billed_ms) AS billed_ms, sum(runs) AS runs,
           sum(micro_usd) AS micro_usd, sum(duplicates) AS duplicates,
           sum(duplicate_micro_usd) AS duplicate_micro_usd
         FROM recast_cost_days WHERE day BETWEEN $1 AND $2 ${filters.map((f) => `AND ${f}`).join(' ')}
         GROUP BY 1, 2, 3, 4`,
        values,
      ));
      pending = await notWritten(snapshot, outbox);
    } finally {
      await snapshot.close();
    }
    for (const r of rows) {
      const dims = {
        day: r.day,
        resolution: r.resolution,
        tenant: r.tenant,
        batch: r.batch_id === '-' ? null : r.batch_id,
      };
      table.add(dims, 'ms', r.billed_ms);
      table.add(dims, 'jobs', r.runs);
      table.add(dims, 'micro_usd', r.micro_usd);
      table.add(dims, 'duplicates', r.duplicates);
      table.add(dims, 'duplicate_micro_usd', r.duplicate_micro_usd);
    }
    const inRange = new Set(days);
    for (const item of pending) {
      if (!inRange.has(item.day)) continue;
      if (query.tenant && item.tenant !== query.tenant) continue;
      if (query.batch && item.batch_id !== query.batch) continue;
      const dims = { day: item.day, resolution: item.resolution, tenant: item.tenant, batch: item.batch_id };
      const duplicate = item.kind === 'duplicate';
      table.add(dims, 'ms', item.billed_ms);
      table.add(dims, 'micro_usd', item.micro_usd);
      table.add(dims, duplicate ? 'duplicates' : 'jobs', 1);
      if (duplicate) table.add(dims, 'duplicate_micro_usd', item.micro_usd);
    }
    const mismatches = redis.pipeline();
    for (const day of days) mismatches.hgetall(keys.billingMismatchDay(day));
    const replies = (await mismatches.exec()) ?? [];
    days.forEach((day, i) => {
      addDayCounters(table, day, (replies[i]?.[1] ?? {}) as Record<string, string>);
    });
    return { ...table.report(), source: 'history' };
  } catch (err) {
    if ((asDatabaseError(err) as { code?: string }).code !== 'DATABASE_UNAVAILABLE') throw err;
    return { ...(await costReport(redis, keys, query)), source: 'live' };
  }
}

/** The charges on the outbox as read at one moment: ids and their ledger entries. */
export interface OutboxRead {
  items: LineItem[];
}

/**
 * The charges on the outbox (recorded in Redis, perhaps not yet in PostgreSQL), read before the
 * PostgreSQL side of a report: undefined when there are too many to read.
 */
export async function readOutbox(redis: Redis, keys: Keys): Promise<OutboxRead | undefined> {
  const ids = await redis.zrange(keys.outboxCharges(), 0, MAX_PENDING);
  if (ids.length > MAX_PENDING) return undefined;
  if (ids.length === 0) return { items: [] };
  const entries = await redis.hmget(keys.ledgerCharged(), ...ids);
  return {
    items: ids.flatMap((id, i) => {
      const entry = entries[i];
      return entry ? [lineItemOf(id, parseChargeEntry(id.split('#')[0] ?? id, entry))] : [];
    }),
  };
}

/** Those of the outbox's charges the snapshot does not hold (the rest it counts itself). */
export async function notWritten(snapshot: Pick<Database, 'query'>, outbox: OutboxRead): Promise<LineItem[]> {
  if (outbox.items.length === 0) return [];
  const { rows } = await snapshot.query<{ charge_id: string }>(
    'SELECT charge_id FROM recast_charges WHERE charge_id = ANY($1)',
    [outbox.items.map((i) => i.charge_id)],
  );
  const written = new Set(rows.map((r) => r.charge_id));
  return outbox.items.filter((i) => !written.has(i.charge_id));
}

export interface ItemQuery {
  from: string;
  to: string;
  tenant?: string | undefined;
  batch?: string | undefined;
}

/**
 * Every line item between two UTC days (inclusive), in (day, charge id) order, read a page at a
 * time (keyset, never OFFSET) in one snapshot, then the ones not archived yet (read before it, as
 * for the report): for finance to reconcile an invoice.
 */
export async function* lineItems(
  db: Database,
  redis: Redis,
  keys: Keys,
  query: ItemQuery,
  pageSize = 1_000,
): AsyncGenerator<LineItem & { archived: boolean }> {
  const days = reportDays(query);
  const outbox = (await readOutbox(redis, keys)) ?? { items: [] };
  const snapshot = await db.openSnapshot();
  try {
    let after: { day: string; chargeId: string } | undefined;
    for (;;) {
      const values: unknown[] = [days[0], days.at(-1)];
      const where = ['day BETWEEN $1 AND $2'];
      if (query.tenant) where.push(`tenant = $${values.push(query.tenant)}`);
      if (query.batch) where.push(`batch_id = $${values.push(query.batch)}`);
      if (after)
        where.push(`(day, charge_id) > ($${values.push(after.day)}, $${values.push(after.chargeId)})`);
      const { rows } = await snapshot.query<LineItem>(
        `SELECT charge_id, job_id, attempt, task_id, tenant, batch_id, resolution, billed_ms, micro_usd,
           price_version, kind, to_char(day, 'YYYY-MM-DD') AS day,
           to_char(charged_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS charged_at
         FROM recast_charges WHERE ${where.join(' AND ')}
         ORDER BY day, charge_id LIMIT $${values.push(pageSize)}`,
        values,
      );
      for (const row of rows) yield { ...row, archived: true };
      const last = rows.at(-1);
      if (!last || rows.length < pageSize) break;
      after = { day: last.day, chargeId: last.charge_id };
    }
    const inRange = new Set(days);
    for (const item of await notWritten(snapshot, outbox)) {
      if (!inRange.has(item.day)) continue;
      if (query.tenant && item.tenant !== query.tenant) continue;
      if (query.batch && item.batch_id !== query.batch) continue;
      yield { ...item, archived: false };
    }
  } finally {
    await snapshot.close();
  }
}
