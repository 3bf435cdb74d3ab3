import type { JobStore } from '../model/job-store.js';
import type { FairQueue } from '../scheduling/fair-queue.js';
import type { BatchStore } from './batch-store.js';

export interface RetryResult {
  retried: number;
  skipped: number;
}

/**
 * Run a batch's failed (and, if asked, cancelled) rows again: the same jobs, with their custom_id
 * and line, as new attempts. This is the one deliberate way out of a terminal state, taken only
 * on an operator's request and with an explicit from-set (the state machine's own table never
 * leaves a terminal state). Each re-run is charged on its own ledger entry, and reserves against
 * the batch budget like any job.
 */
export async function retryBatch(
  deps: { batches: BatchStore; store: JobStore; fair: FairQueue },
  batchId: string,
  tenant: string,
  options: { includeCancelled: boolean },
): Promise<RetryResult> {
  const from = options.includeCancelled ? (['failed', 'cancelled'] as const) : (['failed'] as const);
  const result: RetryResult = { retried: 0, skipped: 0 };
  for await (const job of deps.batches.eachJob(batchId)) {
    if (!(from as readonly string[]).includes(job.state)) continue;
    const multi = deps.store.multi();
    deps.fair.pushIn(multi, job.id, tenant);
    deps.store.transitionIn(
      multi,
      job.id,
      'queued',
      {
        reruns: (job.reruns ?? 0) + 1,
        task_id: null,
        provider_status: null,
        dispatch_id: null,
        finished_at: null,
        error_code: null,
        error_message: null,
        output_url: null,
        billed_ms: null,
        cost_micro_usd: null,
        provider_failures: 0,
        // A run asked for by an operator: the batch's completion_window no longer holds it back.
        expires_at: null,
      },
      { from: [job.state] },
    );
    const replies = (await multi.exec()) ?? [];
    if ((replies[1]?.[1] as unknown[] | undefined)?.[0] === 1) {
      result.retried++;
      // A billed cancel that runs again is no longer a cancelled row.
      if (job.state === 'cancelled' && job.billed_ms !== undefined)
        await deps.batches.countCancelBilled(batchId, true, -1);
    } else result.skipped++;
  }
  if (result.retried > 0) {
    await deps.batches.reopen(batchId, tenant);
    void deps.fair.kick();
  }
  return result;
}
