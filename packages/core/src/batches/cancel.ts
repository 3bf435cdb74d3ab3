import { AppError } from '../errors/app-error.js';
import { type CancelDeps, cancelJob } from '../intake/cancel.js';
import type { BatchStore } from './batch-store.js';

export interface BatchCancelTally {
  /** Rows that had not reached the provider: cancelled at once, nothing billed. */
  cancelled_before_spend: number;
  /** Rows at the provider: asked to cancel there; each settles as billed or not when it ends. */
  cancelling_at_provider: number;
  /** Rows that had finished before the cancel (completed, failed or cancelled). */
  already_finished: number;
}

/**
 * Cancel every unfinished row of a batch, in row order: the batch is `cancelling` first, so its
 * status says so while the rows are being cancelled and afterwards until the provider's answers
 * settle the last of them. Idempotent: a second cancel finds the rows cancelled or cancelling.
 */
export async function cancelBatch(
  deps: CancelDeps & { batches: BatchStore },
  batchId: string,
  tenant: string,
): Promise<BatchCancelTally> {
  await deps.batches.markCancelling(batchId, tenant);
  const tally: BatchCancelTally = {
    cancelled_before_spend: 0,
    cancelling_at_provider: 0,
    already_finished: 0,
  };
  for await (const job of deps.batches.eachJob(batchId)) {
    try {
      const { job: now, changed } = await cancelJob(deps, tenant, job.id);
      if (now.state === 'cancelled') tally.cancelled_before_spend++;
      else if (changed || now.state === 'cancelling') tally.cancelling_at_provider++;
    } catch (err) {
      if (err instanceof AppError && err.code === 'JOB_FINISHED') tally.already_finished++;
      else throw err;
    }
  }
  return tally;
}
