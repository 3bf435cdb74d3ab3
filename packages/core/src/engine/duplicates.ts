import type { Logger } from '../infra/logger.js';
import { enqueueSettle, type SettlePayload } from '../model/catalog.js';
import type { JobRecord } from '../model/record.js';
import { utcDay } from '../money/ledger.js';
import { costOf } from '../money/price-table.js';
import { InferenceError } from '../provider/inference-error.js';
import { isTerminalStatus } from '../provider/status.js';
import { billedSeconds, type Task } from '../provider/task.js';
import { belongsTo, webhookOwner } from '../provider/webhook-token.js';
import type { EngineContext, ProviderBinding } from './context.js';

export type DuplicateResult =
  | { skipped: string }
  | { duplicate: string; charged: boolean }
  | { duplicate: string; cancelled: true };

/**
 * A second task for one job reached the provider (another client on the account, a provider bug,
 * or a window no claim can close: a process frozen between its claim and its POST for longer than
 * its lock). Stop it if it is still live; if it ends billed, the provider has charged for it, so
 * the ledger does too: a `duplicate` line of its own, on the job and in the costs report, so the
 * ledger still equals the bill. Called by settle for any update about a task that is not the
 * job's, and by dispatch when the task it just created lost the race to an attached one.
 */
export async function settleDuplicate(
  ctx: EngineContext,
  provider: ProviderBinding,
  record: JobRecord,
  payload: SettlePayload,
  log: Logger,
): Promise<DuplicateResult> {
  let task: Task;
  try {
    task = await provider.client.getTask(payload.taskId);
  } catch (err) {
    if (err instanceof InferenceError && err.httpStatus === 404) {
      log.warn({ taskId: payload.taskId }, 'update for a task the provider does not know; ignoring');
      return { skipped: 'unknown-task' };
    }
    throw err;
  }
  // The token in the URL names the job; the task id in the body is only a claim. A task whose own
  // webhook names another job (or none of ours) is nobody's here: never charged to this job.
  if (task.webhook !== undefined && !belongsTo(task, record.id)) {
    log.warn({ taskId: task.id }, 'update names a task of another job; ignoring');
    return { skipped: 'foreign-task' };
  }
  if (!isTerminalStatus(task.status)) {
    await provider.client
      .cancel(task.id)
      .catch((err: Error) => log.warn({ err: err.message }, 'cancel failed'));
    ctx.metrics?.duplicateTasks.inc({ outcome: 'cancelled' });
    log.error(
      { taskId: task.id, recorded: record.task_id },
      'a second live task for this job: cancelled it at the provider',
    );
    await follow(ctx, provider, record, payload);
    return { duplicate: task.id, cancelled: true };
  }
  const seconds = billedSeconds(task);
  if (seconds === undefined || seconds <= 0) {
    log.warn({ taskId: task.id, status: task.status }, 'a second task for this job ended unbilled');
    ctx.metrics?.duplicateTasks.inc({ outcome: 'unbilled' });
    return { skipped: 'duplicate-unbilled' };
  }
  const resolution = record.input.resolution;
  const cost = costOf(ctx.prices, resolution, seconds);
  const attempt = Number(webhookOwner(task)?.attempt ?? payload.attempt ?? record.attempt);
  const chargeId = `${record.id}#task-${task.id}`;
  const charged = await ctx.ledger.charge({
    jobId: record.id,
    chargeId,
    taskId: task.id,
    ...(Number.isSafeInteger(attempt) ? { attempt } : {}),
    kind: 'duplicate',
    tenant: record.tenant,
    batch_id: record.batch_id,
    day: utcDay(new Date()),
    resolution,
    ms: cost.ms,
    microUsd: cost.microUsd,
    priceVersion: ctx.prices.version,
  });
  // Billed under a line of its own already (a failure that was retried as a new attempt): not a
  // duplicate. Charged as one by an earlier settle: note it again (a crash may have come between).
  if (!charged && (await ctx.ledger.chargeIdOfTask(task.id)) !== chargeId)
    return { skipped: 'charged already' };
  await ctx.store.noteDuplicate(record.id, task.id, cost.microUsd);
  if (charged) {
    ctx.metrics?.duplicateTasks.inc({ outcome: 'charged' });
    log.error(
      { taskId: task.id, recorded: record.task_id, microUsd: cost.microUsd, seconds },
      'a second task for this job was billed: charged as a duplicate',
    );
  }
  return { duplicate: task.id, charged };
}

/**
 * The task this dispatch just created lost to one a settle attached meanwhile: stop ours now, and
 * follow it to its end (a settle of it comes back until it is terminal), charging it if billed.
 */
export async function followDuplicate(
  ctx: EngineContext,
  provider: ProviderBinding,
  record: JobRecord,
  taskId: string,
  log: Logger,
): Promise<void> {
  await provider.client.cancel(taskId).catch((err: Error) => log.warn({ err: err.message }, 'cancel failed'));
  ctx.metrics?.duplicateTasks.inc({ outcome: 'cancelled' });
  log.error({ taskId, recorded: record.task_id }, 'submitted a second task for this attempt: cancelled it');
  await follow(ctx, provider, record, { jobId: record.id, taskId, statusHint: 'duplicate', recheck: 0 });
}

async function follow(
  ctx: EngineContext,
  provider: ProviderBinding,
  record: JobRecord,
  payload: SettlePayload,
) {
  if (payload.recheck >= provider.maxRechecks) return;
  await enqueueSettle(
    ctx.queues,
    { jobId: record.id, taskId: payload.taskId, statusHint: 'duplicate', recheck: payload.recheck + 1 },
    { delay: provider.recheckMs },
  );
}
