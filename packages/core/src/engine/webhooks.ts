import { Job } from 'bullmq';
import { AppError } from '../errors/app-error.js';
import { bullJobId, enqueueSettle, type SettlePayload } from '../model/catalog.js';
import { isTerminalState, type JobState } from '../model/states.js';
import { isTerminalStatus, type TaskStatusName } from '../provider/status.js';
import type { EngineContext } from './context.js';

export interface WebhookHint {
  jobId: string;
  taskId: string;
  /** The attempt the webhook URL named. */
  attempt?: number;
  /** What the webhook claimed, as it said it (status text or number): a hint only. */
  statusHint: string | undefined;
  /** The same claim, parsed. */
  claimed: TaskStatusName;
}

/**
 * A provider webhook for a job, authenticated by its URL token already: put a settle of it on the
 * queue (in Redis before the 2xx, so an accepted webhook is never lost). Settles are deduped per
 * (job, task, claimed status): a storm of copies is one settle. But a webhook that claimed a
 * terminal state the provider did not confirm (its settle found the task still running) must not
 * swallow the genuine one that follows with the same claim: that settle is run again at once,
 * rather than leaving the job to the next re-check.
 */
export async function acceptWebhook(ctx: EngineContext, hint: WebhookHint): Promise<void> {
  if (!(await ctx.store.exists(hint.jobId))) {
    throw new AppError('NOT_FOUND', `job ${hint.jobId} not found`, { statusCode: 404 });
  }
  const payload: SettlePayload = {
    jobId: hint.jobId,
    taskId: hint.taskId,
    ...(hint.attempt !== undefined ? { attempt: hint.attempt } : {}),
    ...(hint.statusHint !== undefined ? { statusHint: hint.statusHint } : {}),
    recheck: 0,
  };
  const job = await enqueueSettle(ctx.queues, payload);
  if (!isTerminalStatus(hint.claimed)) return;
  if ((await job.getState()) !== 'completed') return;
  const earlier = await Job.fromId(ctx.queues.settle, job.id ?? settleId(payload));
  const reached = (earlier?.returnvalue as { state?: JobState } | undefined)?.state;
  if (reached !== undefined && isTerminalState(reached)) return;
  // The earlier settle under this id did not see the claimed end: this one may be the genuine one.
  await earlier?.remove().catch(() => undefined);
  await enqueueSettle(ctx.queues, payload);
}

function settleId(payload: SettlePayload): string {
  return bullJobId(
    'settle',
    payload.jobId,
    payload.taskId,
    payload.statusHint ?? 'poll',
    String(payload.recheck),
  );
}
