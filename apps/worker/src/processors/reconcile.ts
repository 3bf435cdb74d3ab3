import type { Logger } from '@recast/core/infra';
import { enqueueSettle, type JobRecord } from '@recast/core/model';
import { InferenceError, isTerminalStatus } from '@recast/core/provider';
import type { WorkerContext } from '../context.js';
import { releaseUnbilled } from '../money.js';
import { adoptOrphan, findOrphan, type OrphanSearch } from '../orphans.js';

export interface ReconcileDeps extends WorkerContext {
  /** Most jobs looked at per pass: each costs a provider call, so this bounds the read rate. */
  maxPerPass: number;
  /** When to look again at a job that is still waiting on the provider. */
  againAfterMs: number;
  orphans: OrphanSearch;
}

const LIVE_DISPATCH = new Set(['active', 'waiting', 'delayed', 'prioritized', 'waiting-children']);

/**
 * `reconcile` (a BullMQ job scheduler, one pass every RECONCILE_INTERVAL_MS): find the jobs whose
 * provider task has been quiet for longer than its state allows (the index moves with every
 * transition, so this reads only what is overdue) and
 * - poll `GET /tasks/:id/status`; a change (or a terminal status) goes to settle, which reads the
 *   full task: a lost webhook is recovered this way;
 * - for a job stuck in `submitting` whose dispatch is gone, look for the orphan task at the provider
 *   and adopt it; only when there is none does the job go back in line for a new attempt.
 * A 429 ends the pass: the next one comes soon enough.
 */
export function createReconcileProcessor(deps: ReconcileDeps) {
  return async () => {
    const due = await deps.store.dueForReconcile(Date.now(), deps.maxPerPass);
    if (due.length > 0) deps.logger.debug({ due: due.length }, 'reconcile pass');
    let polled = 0;
    for (const jobId of due) {
      const record = await deps.store.get(jobId);
      if (!record) {
        await deps.store.forgetReconcile(jobId);
        continue;
      }
      const log = deps.logger.child({ jobId, tenant: record.tenant, batchId: record.batch_id });
      // Push the next look out first, so a slow pass and the next one do not both take this job.
      await deps.store.reconcileLater(jobId, deps.againAfterMs);
      try {
        polled++;
        if (record.task_id && ['submitted', 'running', 'cancelling'].includes(record.state)) {
          await pollTask(deps, record, log);
        } else if (record.state === 'submitting' || record.state === 'cancelling') {
          await recoverSubmit(deps, record, log);
        } else {
          await deps.store.forgetReconcile(jobId);
        }
      } catch (err) {
        if (err instanceof InferenceError && err.code === 'PROVIDER_RATE_LIMITED') {
          log.warn({ retryAfterMs: err.retryAfterMs }, 'provider rate limit: reconcile pass ends early');
          break;
        }
        log.warn({ err: (err as Error).message }, 'reconcile of a job failed; will look again');
      }
    }
    return { due: due.length, polled };
  };
}

async function pollTask(deps: ReconcileDeps, record: JobRecord, log: Logger): Promise<void> {
  const taskId = record.task_id as string;
  const status = await deps.client.getStatus(taskId);
  const terminal = isTerminalStatus(status.status);
  if (terminal || status.status !== record.provider_status) {
    log.info(
      { taskId, status: status.status, recorded: record.provider_status },
      'reconcile: provider moved on',
    );
    await enqueueSettle(deps.queues, {
      jobId: record.id,
      taskId,
      statusHint: `poll-${status.status}`,
      recheck: 0,
    });
  }
  if (record.state === 'cancelling' && !terminal) await deps.client.cancel(taskId);
}

async function recoverSubmit(deps: ReconcileDeps, record: JobRecord, log: Logger): Promise<void> {
  // While the dispatch that claimed this attempt is alive (running, or moved back by BullMQ's
  // stalled check), it resumes the submit itself, adoption included.
  if (record.dispatch_id) {
    const dispatch = await deps.queues.dispatch.getJob(record.dispatch_id);
    if (dispatch && LIVE_DISPATCH.has(await dispatch.getState())) return;
  }
  const orphan = await findOrphan(deps.client, record, deps.orphans);
  if (orphan) return adoptOrphan(deps, record, orphan, log);
  if (record.state === 'cancelling') {
    // Cancelled before the provider ever had it: nothing was spent.
    const moved = await deps.store.transition(
      record.id,
      'cancelled',
      { finished_at: new Date().toISOString() },
      { from: ['cancelling'], attempt: record.attempt },
    );
    if (moved.ok) await releaseUnbilled(deps, record);
    return;
  }
  // The provider never got this attempt: back to the head of the line, for a new attempt (the
  // reservation is kept; the in-flight slot is not held by a job in line).
  const multi = deps.store.multi();
  deps.fair.pushIn(multi, record.id, record.tenant, 'front');
  deps.store.transitionIn(multi, record.id, 'queued', {}, { from: ['submitting'], attempt: record.attempt });
  await multi.exec();
  await deps.gate.release(record.id);
  log.warn({ attempt: record.attempt }, 'a submit died before the provider had it: queued again');
  void deps.fair.kick();
}
