import type { Logger } from '../infra/logger.js';
import { enqueueCancel, enqueueSettle } from '../model/catalog.js';
import type { JobRecord } from '../model/record.js';
import { InferenceError } from '../provider/inference-error.js';
import { isTerminalStatus } from '../provider/status.js';
import { type EngineContext, jobLogger, type ProviderBinding, providerOf } from './context.js';
import { adoptOrphan, findOrphan, orphanSearchFrom } from './orphans.js';
import { nextLookMs } from './overdue.js';
import { releaseUnbilled } from './terminal.js';
import { watchAbandoned } from './watch.js';

const LIVE_DISPATCH = new Set(['active', 'waiting', 'delayed', 'prioritized', 'waiting-children']);

export interface ReconcilePass {
  due: number;
  polled: number;
}

/**
 * One reconcile pass (a BullMQ job scheduler runs one every RECONCILE_INTERVAL_MS across all
 * worker processes): find the jobs whose provider task is overdue (against its expected duration,
 * see overdue.ts, or quiet for longer than its state allows; the index moves with every
 * transition, so this reads only what is due), most overdue first, at most RECONCILE_MAX_PER_PASS
 * and within the reads quota, and
 * - poll `GET /tasks/:id/status`; a change (or a terminal status) goes to settle, which reads the
 *   full task: a lost webhook is recovered this way;
 * - for a job stuck in `submitting` whose dispatch is gone, look for the orphan task at the provider
 *   and adopt it; only when there is none does the job go back in line for a new attempt.
 * A 429 ends the pass: the next one comes soon enough.
 */
export async function reconcile(ctx: EngineContext): Promise<ReconcilePass> {
  const provider = providerOf(ctx);
  const due = await ctx.store.dueForReconcile(Date.now(), provider.reconcile.maxPerPass);
  if (due.length > 0) ctx.logger.debug({ due: due.length }, 'reconcile pass');
  let polled = 0;
  for (const jobId of due) {
    const record = await ctx.store.get(jobId);
    if (!record) {
      await ctx.store.forgetReconcile(jobId);
      continue;
    }
    const log = jobLogger(ctx, record);
    const now = Date.now();
    const waiting = record.task_id && (record.state === 'submitted' || record.state === 'running');
    // Push the next look out first, so a slow pass and the next one do not both take this job; a
    // task is looked at by its deadline at the latest.
    const untilDeadline =
      waiting && record.deadline_ms !== undefined ? Math.max(0, record.deadline_ms - now) : Infinity;
    const again = waiting
      ? nextLookMs(record, now, provider.reconcile.floorMs, provider.reconcile.againAfterMs)
      : provider.reconcile.againAfterMs;
    await ctx.store.reconcileLater(jobId, Math.min(again, untilDeadline), now);
    try {
      polled++;
      if (waiting && record.deadline_ms !== undefined && record.deadline_ms <= now) {
        await exceedDeadline(ctx, record, log);
      } else if (record.task_id && ['submitted', 'running', 'cancelling'].includes(record.state)) {
        await pollTask(ctx, provider, record, log);
      } else if (record.state === 'submitting' || record.state === 'cancelling') {
        await recoverSubmit(ctx, provider, record, log);
      } else {
        await ctx.store.forgetReconcile(jobId);
      }
    } catch (err) {
      if (err instanceof InferenceError && err.code === 'PROVIDER_RATE_LIMITED') {
        // This job is looked at again as soon as the reads quota has room, not a whole
        // RECONCILE_AFTER_MS later; the rest of the pass waits for the next one.
        await ctx.store.reconcileLater(jobId, err.retryAfterMs ?? 1_000);
        log.warn({ retryAfterMs: err.retryAfterMs }, 'provider rate limit: reconcile pass ends early');
        break;
      }
      log.warn({ err: (err as Error).message }, 'reconcile of a job failed; will look again');
    }
  }
  return { due: due.length, polled };
}

/**
 * The task is past its deadline at the provider (the app has none of its own, so a task can sit in
 * `running` for ever): cancel it there as a user's cancel would, marked so that settle ends the job
 * `failed` with DEADLINE_EXCEEDED. Its money settles as the provider reports it (released when the
 * task is not billed), and its slot and reservation are freed when it does. A task that completes
 * before the cancel takes completes the job (it was billed, and its output exists).
 */
async function exceedDeadline(ctx: EngineContext, record: JobRecord, log: Logger) {
  const taskId = record.task_id as string;
  const moved = await ctx.store.transition(
    record.id,
    'cancelling',
    {
      deadline_exceeded_at: new Date().toISOString(),
      error_code: 'DEADLINE_EXCEEDED',
      error_message: `the provider did not finish task ${taskId} within ${record.timeout_seconds} s (timeout_seconds)`,
    },
    { from: ['submitted', 'running'], attempt: record.attempt, task: taskId },
  );
  if (!moved.ok) return;
  await enqueueCancel(ctx.queues, record.id);
  log.warn(
    { taskId, timeoutSeconds: record.timeout_seconds, deadlineMs: record.deadline_ms },
    'deadline exceeded: cancelling the task at the provider',
  );
}

async function pollTask(ctx: EngineContext, provider: ProviderBinding, record: JobRecord, log: Logger) {
  const taskId = record.task_id as string;
  const status = await provider.client.getStatus(taskId);
  const terminal = isTerminalStatus(status.status);
  if (terminal || status.status !== record.provider_status) {
    log.info(
      { taskId, status: status.status, recorded: record.provider_status },
      'reconcile: provider moved on',
    );
    await enqueueSettle(ctx.queues, {
      jobId: record.id,
      taskId,
      statusHint: `poll-${status.status}`,
      recheck: 0,
    });
  }
  if (record.state === 'cancelling' && !terminal) await provider.client.cancel(taskId);
}

async function recoverSubmit(ctx: EngineContext, provider: ProviderBinding, record: JobRecord, log: Logger) {
  // While the dispatch that claimed this attempt is alive (running, delayed, or moved back by
  // BullMQ's stalled check), it resumes the submit itself, adoption included.
  if (record.dispatch_id) {
    const dispatch = await ctx.queues.dispatch.getJob(record.dispatch_id);
    if (dispatch && LIVE_DISPATCH.has(await dispatch.getState())) return;
  }
  // A POST of this attempt may still be landing: no conclusion before it has.
  if (
    record.attempt > 0 &&
    orphanSearchFrom(record, ctx.config.INFERENCE_TIMEOUT_MS, provider.orphans.graceMs) > Date.now()
  )
    return;
  const orphan =
    record.attempt > 0
      ? await findOrphan(provider.client, record, {
          ...provider.orphans,
          publicUrl: provider.publicUrl,
          webhookSecret: ctx.config.WEBHOOK_SECRET,
        })
      : undefined;
  if (orphan) return adoptOrphan({ ...ctx, client: provider.client }, record, orphan, log);
  if (record.state === 'cancelling') {
    // Cancelled before the provider ever had it: nothing was spent.
    const moved = await ctx.store.transition(
      record.id,
      'cancelled',
      { finished_at: new Date().toISOString(), submit_claim: null },
      { from: ['cancelling'], attempt: record.attempt },
    );
    if (moved.ok) {
      await releaseUnbilled(ctx, record);
      if (record.attempt > 0) await watchAbandoned(ctx, provider, record);
    }
    return;
  }
  // The provider has no task for this attempt (yet: a late POST may still land, so the attempt is
  // watched): back to the head of the line, for a new attempt (the reservation is kept; the
  // in-flight slot is not held by a job in line).
  if (record.attempt > 0) await watchAbandoned(ctx, provider, record);
  const multi = ctx.store.multi();
  ctx.fair.pushIn(multi, record.id, record.tenant, 'front');
  ctx.store.transitionIn(
    multi,
    record.id,
    'queued',
    { submit_claim: null, claimed_at: null, submit_ended_at: null },
    { from: ['submitting'], attempt: record.attempt },
  );
  await multi.exec();
  await ctx.gate.release(record.id);
  log.warn({ attempt: record.attempt }, 'a submit died before the provider had it: queued again');
  void ctx.fair.kick();
}
