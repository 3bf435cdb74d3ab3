import type { Eta } from '../forecast/eta.js';
import type { Forecaster } from '../forecast/forecaster.js';
import type { Budgets } from '../money/budgets.js';
import type { Ledger } from '../money/ledger.js';
import { microUsdToUsd } from '../money/price-table.js';
import {
  type BatchCounts,
  type BatchRecord,
  type BatchStore,
  batchStatus,
  type CancelBills,
} from './batch-store.js';

export interface BatchMoney {
  reserved_micro_usd: number;
  spent_micro_usd: number;
  /** Billed seconds by resolution (from the ledger's per-batch totals). */
  billed_seconds: Record<string, number>;
}

/** The public representation of a batch (`GET /v1/batches/:id`). */
export function batchView(
  batch: BatchRecord,
  counts: BatchCounts,
  money: BatchMoney,
  cancelBills: CancelBills = { billed: 0, endedCancelled: 0 },
  eta: Eta | null = null,
) {
  const billedCancelled = Math.min(Math.max(0, cancelBills.endedCancelled), counts.cancelled);
  return {
    id: batch.id,
    object: 'batch' as const,
    tenant: batch.tenant,
    name: batch.name ?? null,
    metadata: batch.metadata ?? null,
    mode: batch.mode,
    status: batchStatus(batch, counts),
    rows: { total: batch.total, invalid: batch.invalid_rows },
    counts: counts,
    /**
     * After a cancel: the rows cancelled before any spend, and the rows billed although they were
     * being cancelled (the cancel came too late; most end completed).
     */
    cancelled: { before_spend: counts.cancelled - billedCancelled, billed: Math.max(0, cancelBills.billed) },
    cost: {
      estimated_micro_usd: batch.estimated_micro_usd,
      estimated_usd: microUsdToUsd(batch.estimated_micro_usd),
      reserved_micro_usd: money.reserved_micro_usd,
      spent_micro_usd: money.spent_micro_usd,
      spent_usd: microUsdToUsd(money.spent_micro_usd),
      max_cost_usd: batch.max_cost_micro_usd === undefined ? null : microUsdToUsd(batch.max_cost_micro_usd),
    },
    seconds_by_resolution: {
      estimated: Object.fromEntries(
        Object.entries(batch.estimated_ms ?? {}).map(([r, ms]) => [r, ms / 1000]),
      ),
      billed: money.billed_seconds,
    },
    callback_url: batch.callback_url ?? null,
    completion_window: batch.completion_window ?? null,
    expires_at: batch.expires_at ?? null,
    /** When the rows still to do should be done, or why they cannot move (null once finished). */
    eta,
    created_at: batch.created_at,
    started_at: batch.started_at ?? null,
    finished_at: batch.finished_at ?? null,
  };
}
export type BatchView = ReturnType<typeof batchView>;

export interface BatchViewDeps {
  batches: BatchStore;
  budgets: Budgets;
  ledger: Ledger;
  /** Estimates the finish of a live batch; without one (archiving, callbacks) eta is null. */
  forecaster?: Pick<Forecaster, 'batch'>;
}

/**
 * A batch as users see it, from a fixed number of reads whatever its size: its record and
 * counters, its lifetime budget usage (reserved and spent) and the ledger's per-batch totals.
 * Undefined for an unknown batch, or one still being uploaded (nobody can see it yet).
 */
export async function loadBatchView(deps: BatchViewDeps, batchId: string): Promise<BatchView | undefined> {
  const [found, usage, totals] = await Promise.all([
    deps.batches.get(batchId),
    deps.budgets.usage(`batch:${batchId}`, 'lifetime'),
    deps.ledger.batchTotals(batchId),
  ]);
  if (!found || found.batch.stored_status === 'validating') return undefined;
  const finished = found.batch.finished_at !== undefined;
  const eta = deps.forecaster && !finished ? await deps.forecaster.batch(found.batch, found.counts) : null;
  return batchView(
    found.batch,
    found.counts,
    {
      ...usage,
      billed_seconds: Object.fromEntries(Object.entries(totals).map(([res, t]) => [res, t.ms / 1000])),
    },
    found.cancelBills,
    eta,
  );
}
