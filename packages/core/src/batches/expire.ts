import { AppError } from '../errors/app-error.js';
import type { JobStore } from '../model/job-store.js';
import type { JobRecord } from '../model/record.js';
import type { Ledger } from '../money/ledger.js';
import type { FairQueue } from '../scheduling/fair-queue.js';
import type { BatchStore } from './batch-store.js';

/** The shortest and longest completion_window a batch may ask for. */
const MIN_WINDOW_MS = 1_000;
const MAX_WINDOW_MS = 30 * 24 * 3_600_000;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * A batch's `completion_window` (`90s`, `30m`, `24h`, `7d`): how long its rows may wait to be sent
 * to the provider, from the batch's creation. A bad one is a 400 that names the field.
 */
export function parseCompletionWindow(text: string): number {
  const match = /^(\d{1,7})(s|m|h|d)$/.exec(text.trim());
  const ms = match ? Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS] : Number.NaN;
  if (!(ms >= MIN_WINDOW_MS && ms <= MAX_WINDOW_MS)) {
    throw new AppError('VALIDATION_FAILED', `completion_window: cannot read "${text}"`, {
      statusCode: 400,
      issues: [
        {
          path: 'completion_window',
          message: 'must be a whole number of s, m, h or d (e.g. 24h), from 1s to 30d',
        },
      ],
    });
  }
  return ms;
}

export interface ExpireDeps {
  store: JobStore;
  fair: FairQueue;
  ledger: Ledger;
  /** Called when money was released (parked jobs may now fit). */
  onMoneyFreed?: () => Promise<void>;
  /** Called when the row reached `expired` here (callbacks). */
  onTerminal?: (job: JobRecord) => Promise<void>;
}

/** The row's batch window has closed (it carries when: `expires_at`). */
export function windowClosed(job: Pick<JobRecord, 'expires_at'>, now = Date.now()): boolean {
  return job.expires_at !== undefined && Date.parse(job.expires_at) <= now;
}

/**
 * End a row that is still in line (queued or parked) once its batch's completion_window has
 * closed: `expired`, out of its line, its reservation (if any) released. Nothing was sent for it,
 * so nothing is billed. Compare-and-set from the state it was read in: a dispatch that claimed it
 * first wins, and the row then finishes normally. Answers whether this call expired it.
 */
export async function expireRow(deps: ExpireDeps, job: JobRecord, now = new Date()): Promise<boolean> {
  if (job.state !== 'queued' && job.state !== 'waiting_budget') return false;
  const moved = await deps.store.transition(
    job.id,
    'expired',
    {
      finished_at: now.toISOString(),
      budget_blocked_by: null,
      error_code: 'BATCH_EXPIRED',
      error_message: `the batch's completion window closed at ${job.expires_at} before this row was sent to the provider`,
    },
    { from: [job.state] },
  );
  if (!moved.ok) return false;
  await deps.fair.remove(job.id, job.tenant);
  const released = await deps.ledger.release(
    { jobId: job.id, tenant: job.tenant, batch_id: job.batch_id },
    now,
  );
  if (released) await deps.onMoneyFreed?.();
  const expired = await deps.store.get(job.id);
  if (expired) await deps.onTerminal?.(expired);
  return true;
}

/**
 * Every batch whose completion_window has closed: its rows still in line end `expired` (rows
 * at the provider finish normally). Safe on every worker at once (each move is a compare-and-set);
 * a batch leaves the list once all its rows were looked at. Answers how many rows it expired.
 */
export async function expireBatches(
  deps: ExpireDeps & { batches: BatchStore },
  now = Date.now(),
): Promise<number> {
  let expired = 0;
  for (const batchId of await deps.batches.expiring(now)) {
    for await (const job of deps.batches.eachJob(batchId)) {
      if (windowClosed(job, now) && (await expireRow(deps, job))) expired++;
    }
    await deps.batches.expiredSwept(batchId);
  }
  return expired;
}
