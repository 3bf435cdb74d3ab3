import { AppError } from '../errors/app-error.js';
import { enqueueCancel, type Queues } from '../model/catalog.js';
import type { JobStore } from '../model/job-store.js';
import type { JobRecord } from '../model/record.js';
import { isTerminalState } from '../model/states.js';
import type { Ledger } from '../money/ledger.js';
import type { FairQueue } from '../scheduling/fair-queue.js';

export interface CancelDeps {
  store: JobStore;
  queues: Queues;
  fair: FairQueue;
  ledger: Ledger;
  /** Called when money was released (parked jobs may now fit). */
  onMoneyFreed?: () => Promise<void>;
  /** Called when the job reached `cancelled` here (callbacks). */
  onTerminal?: (job: JobRecord) => Promise<void>;
}

export interface CancelResult {
  job: JobRecord;
  /** False when the job was already being cancelled (an idempotent repeat). */
  changed: boolean;
}

/**
 * Cancel a job. Not yet at the provider (queued, parked): cancelled at once, out of its line, its
 * reservation released. At the provider (submitting, submitted, running): `cancelling`, and a
 * cancel step asks the provider; the terminal update then settles the money, billed or not.
 * Idempotent; a finished job is a 409 that says its state.
 */
export async function cancelJob(
  deps: CancelDeps,
  tenant: string,
  jobId: string,
  now = new Date(),
): Promise<CancelResult> {
  for (let tries = 0; tries < 5; tries++) {
    const job = await deps.store.get(jobId);
    if (!job || job.tenant !== tenant)
      throw new AppError('NOT_FOUND', `job ${jobId} not found`, { statusCode: 404 });
    if (isTerminalState(job.state)) {
      throw new AppError('JOB_FINISHED', `job ${jobId} is already ${job.state}`, {
        statusCode: 409,
        details: { state: job.state },
      });
    }
    if (job.state === 'cancelling') return { job, changed: false };
    if (job.state === 'queued' || job.state === 'waiting_budget') {
      const moved = await deps.store.transition(
        jobId,
        'cancelled',
        { finished_at: now.toISOString(), budget_blocked_by: null },
        { from: [job.state] },
      );
      if (!moved.ok) continue; // a dispatch claimed it meanwhile: look again
      await deps.fair.remove(jobId, job.tenant);
      const released = await deps.ledger.release({ jobId, tenant: job.tenant, batch_id: job.batch_id }, now);
      if (released) await deps.onMoneyFreed?.();
      const cancelled = (await deps.store.get(jobId)) as JobRecord;
      await deps.onTerminal?.(cancelled);
      return { job: cancelled, changed: true };
    }
    const moved = await deps.store.transition(jobId, 'cancelling', {}, { from: [job.state] });
    if (!moved.ok) continue;
    await enqueueCancel(deps.queues, jobId);
    return { job: (await deps.store.get(jobId)) as JobRecord, changed: true };
  }
  throw new AppError('CONFLICT', `job ${jobId} kept changing state; retry the cancel`, {
    statusCode: 409,
    retryable: true,
  });
}
