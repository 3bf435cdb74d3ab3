import { CancelPayloadSchema, enqueueSettle } from '../model/catalog.js';
import { isTerminalStatus } from '../provider/status.js';
import { done, type EngineContext, jobLogger, providerOf, type StepOutcome } from './context.js';

export type CancelStepResult = { skipped: string } | { waiting: string } | { cancelled: string };

/**
 * `job.cancel`: the API moved a job to `cancelling`; ask the provider to cancel its task, then let
 * settle follow the task to its terminal state (cancelled, or completed if it won the race), which
 * settles the money. A job with no task id yet is handled where the id appears: the dispatch that
 * is submitting it cancels the task it gets back, and the reconciler covers a dispatch that died.
 */
export async function cancelAtProvider(
  ctx: EngineContext,
  payload: unknown,
): Promise<StepOutcome<CancelStepResult>> {
  const provider = providerOf(ctx);
  const { jobId } = CancelPayloadSchema.parse(payload);
  const record = await ctx.store.get(jobId);
  if (record?.state !== 'cancelling') return done({ skipped: record?.state ?? 'missing' });
  if (!record.task_id) return done({ waiting: 'task id' });
  const status = await provider.client.getStatus(record.task_id);
  if (!isTerminalStatus(status.status)) await provider.client.cancel(record.task_id);
  jobLogger(ctx, record, record.task_id).info({ status: status.status }, 'cancel sent to the provider');
  await enqueueSettle(
    ctx.queues,
    { jobId, taskId: record.task_id, statusHint: 'cancel-requested', recheck: 0 },
    { delay: isTerminalStatus(status.status) ? 0 : Math.min(provider.recheckMs, 2_000) },
  );
  return done({ cancelled: record.task_id });
}
