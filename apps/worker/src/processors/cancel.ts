import { CancelPayloadSchema, enqueueSettle } from '@recast/core/model';
import { isTerminalStatus } from '@recast/core/provider';
import type { Job } from 'bullmq';
import type { WorkerContext } from '../context.js';

/**
 * `job.cancel`: the API moved a job to `cancelling`; ask the provider to cancel its task, then let
 * settle follow the task to its terminal state (cancelled, or completed if it won the race), which
 * settles the money. A job with no task id yet is handled where the id appears: the dispatch that
 * is submitting it cancels the task it gets back, and the reconciler covers a dispatch that died.
 */
export function createCancelProcessor(deps: WorkerContext & { recheckMs: number }) {
  return async (job: Job) => {
    const { jobId } = CancelPayloadSchema.parse(job.data);
    const record = await deps.store.get(jobId);
    if (record?.state !== 'cancelling') return { skipped: record?.state ?? 'missing' };
    if (!record.task_id) return { waiting: 'task id' };
    const log = deps.logger.child({
      jobId,
      tenant: record.tenant,
      batchId: record.batch_id,
      taskId: record.task_id,
    });
    const status = await deps.client.getStatus(record.task_id);
    if (!isTerminalStatus(status.status)) await deps.client.cancel(record.task_id);
    log.info({ status: status.status }, 'cancel sent to the provider');
    await enqueueSettle(
      deps.queues,
      { jobId, taskId: record.task_id, statusHint: 'cancel-requested', recheck: 0 },
      { delay: isTerminalStatus(status.status) ? 0 : Math.min(deps.recheckMs, 2_000) },
    );
    return { cancelled: record.task_id };
  };
}
