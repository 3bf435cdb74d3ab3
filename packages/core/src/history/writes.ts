import type { BatchView } from '../batches/view.js';
import type { JobRecord } from '../model/record.js';
import type { Charge } from '../money/ledger.js';
import type { Database } from './db.js';

/**
 * Writes to the history, each one statement and idempotent, so an archive pass repeated after a
 * crash (between the write here and the mark in Redis) changes nothing:
 * - a job is upserted by id, and only ever replaced by a later copy of itself (version, then
 *   notes: a kept output noted after the job finished comes as a later copy);
 * - a batch is upserted by id;
 * - a charge is inserted by charge id (a provider task once), and the daily sums grow by the rows
 *   that statement actually inserted, in the same statement.
 */

export async function upsertJobs(db: Database, records: readonly JobRecord[]): Promise<number> {
  if (records.length === 0) return 0;
  const result = await db.query(
    `INSERT INTO recast_jobs AS j (id, tenant, batch_id, line, state, version, notes, created_at,
       finished_at, attempt, task_id, cost_micro_usd, record)
     SELECT r->>'id', r->>'tenant', r->>'batch_id', (r->>'line')::int, r->>'state',
       (r->>'version')::int, coalesce((r->>'notes')::int, 0), (r->>'created_at')::timestamptz,
       (r->>'finished_at')::timestamptz, (r->>'attempt')::int, r->>'task_id',
       (r->>'cost_micro_usd')::bigint, r
     FROM json_array_elements($1::json) AS r
     ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant, batch_id = excluded.batch_id,
       line = excluded.line, state = excluded.state, version = excluded.version,
       notes = excluded.notes, created_at = excluded.created_at, finished_at = excluded.finished_at,
       attempt = excluded.attempt, task_id = excluded.task_id,
       cost_micro_usd = excluded.cost_micro_usd, record = excluded.record, archived_at = now()
     WHERE (j.version, j.notes) <= (excluded.version, excluded.notes)`,
    [JSON.stringify(records)],
  );
  return result.rowCount ?? 0;
}

export async function upsertBatches(db: Database, views: readonly BatchView[]): Promise<number> {
  if (views.length === 0) return 0;
  const result = await db.query(
    `INSERT INTO recast_batches (id, tenant, status, created_at, finished_at, view)
     SELECT v->>'id', v->>'tenant', v->>'status', (v->>'created_at')::timestamptz,
       (v->>'finished_at')::timestamptz, v
     FROM json_array_elements($1::json) AS v
     ON CONFLICT (id) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at,
       view = excluded.view, archived_at = now()`,
    [JSON.stringify(views)],
  );
  return result.rowCount ?? 0;
}

/** A line item as the history keeps it (and as GET /v1/costs/items answers it). */
export interface LineItem {
  charge_id: string;
  job_id: string;
  attempt: number | null;
  task_id: string | null;
  tenant: string;
  batch_id: string | null;
  resolution: string;
  billed_ms: number;
  micro_usd: number;
  price_version: string;
  kind: string;
  day: string;
  charged_at: string;
}

/** A ledger charge (read back from Redis) as a line item. */
export function lineItemOf(chargeId: string, charge: Charge): LineItem {
  return {
    charge_id: chargeId,
    job_id: charge.jobId,
    attempt: charge.attempt ?? null,
    task_id: charge.taskId ?? null,
    tenant: charge.tenant,
    batch_id: charge.batch_id ?? null,
    resolution: charge.resolution,
    billed_ms: charge.ms,
    micro_usd: charge.microUsd,
    price_version: charge.priceVersion,
    kind: charge.kind ?? 'run',
    day: charge.day,
    // Entries written before the ledger kept the time count at the start of their day.
    charged_at: new Date(charge.chargedAtMs ?? Date.parse(`${charge.day}T00:00:00Z`)).toISOString(),
  };
}

export async function insertCharges(db: Database, items: readonly LineItem[]): Promise<number> {
  if (items.length === 0) return 0;
  const result = await db.query(
    `WITH input AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(charge_id text, job_id text, attempt int,
         task_id text, tenant text, batch_id text, resolution text, billed_ms bigint,
         micro_usd bigint, price_version text, kind text, day date, charged_at timestamptz)
     ), inserted AS (
       INSERT INTO recast_charges (charge_id, job_id, attempt, task_id, tenant, batch_id,
         resolution, billed_ms, micro_usd, price_version, kind, day, charged_at)
       SELECT charge_id, job_id, attempt, task_id, tenant, batch_id, resolution, billed_ms,
         micro_usd, price_version, kind, day, charged_at FROM input
       ON CONFLICT DO NOTHING
       RETURNING day, tenant, batch_id, resolution, billed_ms, micro_usd, kind
     )
     INSERT INTO recast_cost_days AS d (day, tenant, batch_id, resolution, billed_ms, runs, micro_usd,
       duplicates, duplicate_micro_usd)
     SELECT day, tenant, coalesce(batch_id, '-'), resolution, sum(billed_ms),
       count(*) FILTER (WHERE kind <> 'duplicate'), sum(micro_usd),
       count(*) FILTER (WHERE kind = 'duplicate'),
       coalesce(sum(micro_usd) FILTER (WHERE kind = 'duplicate'), 0)
     FROM inserted GROUP BY 1, 2, 3, 4
     ON CONFLICT (day, tenant, batch_id, resolution) DO UPDATE SET
       billed_ms = d.billed_ms + excluded.billed_ms, runs = d.runs + excluded.runs,
       micro_usd = d.micro_usd + excluded.micro_usd, duplicates = d.duplicates + excluded.duplicates,
       duplicate_micro_usd = d.duplicate_micro_usd + excluded.duplicate_micro_usd`,
    [JSON.stringify(items)],
  );
  return result.rowCount ?? 0;
}
