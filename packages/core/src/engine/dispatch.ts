import { windowClosed } from '../batches/expire.js';
import { isAppError } from '../errors/app-error.js';
import type { Logger } from '../infra/logger.js';
import { enqueueSettle } from '../model/catalog.js';
import type { JobRecord } from '../model/record.js';
import { isTerminalState } from '../model/states.js';
import { microUsdToUsd } from '../money/price-table.js';
import type { Admission } from '../provider/provider-gate.js';
import { isTerminalStatus } from '../provider/status.js';
import type { TaskResult } from '../provider/task.js';
import { webhookUrl } from '../provider/webhook-token.js';
import {
  done,
  type EngineContext,
  jobLogger,
  type ProviderBinding,
  providerOf,
  type StepOutcome,
} from './context.js';
import { followDuplicate } from './duplicates.js';
import { redoLostClaim } from './lost-claim.js';
import { expireAtDispatch } from './maintenance.js';
import { adoptOrphan, findOrphan, orphanSearchFrom } from './orphans.js';
import { overdueAt } from './overdue.js';
import { submitFailed } from './submit-errors.js';
import { notifyTerminal, ownerOf, releaseLeftover, releaseUnbilled } from './terminal.js';
import { watchAbandoned } from './watch.js';

export interface DispatchStep {
  jobId: string;
  /** The BullMQ dispatch job running this step: the owner of the attempt's submit claim. */
  dispatchId: string;
  /** This is the step's last try (its attempts are used up after it): a transient error fails the job. */
  lastTry: boolean;
}

export type DispatchResult =
  | { taskId: string }
  | { skipped: string }
  | { failed: string }
  | { parked: string };

type Outcome = StepOutcome<DispatchResult>;

/**
 * `job.dispatch`: the one place money and pressure are checked before the provider is called.
 * queued → reserve the estimate against every budget (or park / reject) → admit (in-flight slot,
 * request rate, 429 pause; all workers share them) → submitting with the attempt's submit claim
 * (one atomic step, right before the POST) → POST /apps/run with the attempt's webhook URL →
 * submitted.
 */
export async function dispatch(ctx: EngineContext, step: DispatchStep): Promise<Outcome> {
  const provider = providerOf(ctx);
  const record = await ctx.store.get(step.jobId);
  if (!record) {
    ctx.logger.warn({ jobId: step.jobId }, 'dispatch for a job with no record; dropping');
    return done({ skipped: 'missing' });
  }
  const log = jobLogger(ctx, record);
  if (record.state === 'submitting' && !record.task_id) {
    // Another dispatch of the same job (a duplicate pick) is submitting it right now: not ours.
    if (record.dispatch_id !== step.dispatchId) return done({ skipped: 'submitting elsewhere' });
    return resumeSubmit(ctx, provider, step, record, log);
  }
  if (record.state !== 'queued') {
    // A dispatch that reserved and then waited for the gate may come back to a job cancelled in
    // the meantime (its cancel found nothing reserved yet): give that money back.
    if (isTerminalState(record.state)) await releaseLeftover(ctx, record);
    return done({ skipped: record.state });
  }

  // Its batch's completion_window has closed: a row not yet sent is not sent any more.
  if (windowClosed(record)) {
    if (await expireAtDispatch(ctx, record)) log.info({ expiresAt: record.expires_at }, 'row expired');
    return done({ skipped: 'expired' });
  }
  const amount = record.estimate_micro_usd ?? 0;
  const reserved = await ctx.ledger.reserve(ownerOf(record), amount);
  if (!reserved.ok) return done(await overBudget(ctx, record, reserved, log));

  const admission = await ctx.gate.admit(record.id);
  if (!admission.ok) return gateClosed(provider, admission, log);

  const attempt = record.attempt + 1;
  // The attempt and its submit claim are taken in one compare-and-set, right before the POST. The
  // claim is replicated before the provider is told (REDIS_WAIT_REPLICAS): a claim lost in a
  // failover would leave the job `queued` on the new primary, and its dispatch would POST a second
  // task. When the wait fails this step is put back (Engine: a delay): it then finds its own claim
  // and resumes (an orphan search that finds nothing, then the next attempt): nothing is sent twice.
  const moved = await durableClaim(ctx, record.id, admission.token, () =>
    ctx.store.transition(
      record.id,
      'submitting',
      {
        attempt,
        reserved_micro_usd: amount,
        budget_blocked_by: null,
        dispatch_id: step.dispatchId,
        submit_claim: step.dispatchId,
        claimed_at: new Date().toISOString(),
        submit_ended_at: null,
      },
      { from: ['queued'] },
    ),
  );
  if (!moved.ok) {
    // Someone else moved the job on (a duplicate dispatch won, or it was cancelled). The slot
    // belongs to the job, not to this dispatch: free it only if the job is not at the provider.
    await ctx.gate.submitted(admission.token);
    if (!['submitting', 'submitted', 'running', 'cancelling'].includes(moved.state))
      await ctx.gate.release(record.id);
    // Cancelled (or finished by a duplicate pick) between our read and our move: what we just
    // reserved is nobody's now, and nothing will settle it.
    if (isTerminalState(moved.state)) await releaseLeftover(ctx, record);
    return done({ skipped: moved.state });
  }
  return sendTask(ctx, provider, step, { ...record, attempt }, admission.token, log);
}

/**
 * This very dispatch claimed the attempt before and was cut short (a crash, a stall, a lost
 * answer) without recording a task id: the provider may have accepted the task. Let the earlier
 * POST land, look for its task (adopt it rather than submit and pay twice), and only when the
 * provider has none go on to the next attempt, claimed, and submit that. An attempt is POSTed
 * once: a request that reaches the provider later than any wait (a gateway forwarding long after
 * the client gave up) makes a task of the attempt left behind, which is watched for and stopped,
 * and never passes for the new attempt's.
 */
async function resumeSubmit(
  ctx: EngineContext,
  provider: ProviderBinding,
  step: DispatchStep,
  record: JobRecord,
  log: Logger,
): Promise<Outcome> {
  const searchFrom = orphanSearchFrom(record, ctx.config.INFERENCE_TIMEOUT_MS, provider.orphans.graceMs);
  if (searchFrom > Date.now()) {
    return {
      kind: 'delay',
      ms: searchFrom - Date.now(),
      reason: 'an earlier submit of this attempt may still land',
    };
  }
  const orphan = await findOrphan(provider.client, record, {
    ...provider.orphans,
    publicUrl: provider.publicUrl,
    webhookSecret: ctx.config.WEBHOOK_SECRET,
  });
  if (orphan) {
    await adoptOrphan({ ...ctx, client: provider.client }, record, orphan, log);
    return done({ taskId: orphan.id });
  }
  if (step.lastTry && record.submit_ended_at) {
    // The attempts are used up, every answer was lost, and the provider has no task: give up.
    const failed = await ctx.store.transition(
      record.id,
      'failed',
      {
        error_code: 'PROVIDER_UNAVAILABLE',
        error_message: 'the provider answered none of the submits, and holds no task for them',
        finished_at: new Date().toISOString(),
        submit_claim: null,
      },
      { from: ['submitting'], attempt: record.attempt },
    );
    if (failed.ok) await releaseUnbilled(ctx, record);
    log.error({ attempt: record.attempt }, 'submit failed permanently: no answer, no task');
    return done({ failed: 'PROVIDER_UNAVAILABLE' });
  }
  const admission = await ctx.gate.admit(record.id);
  if (!admission.ok) return gateClosed(provider, admission, log);
  // A settle may have attached a task since the search (its webhook came in): then the claim is
  // revoked and nothing is sent. Else the job is on its next attempt, claimed: one compare-and-set.
  const attempt = await durableClaim(ctx, record.id, admission.token, () =>
    ctx.store.nextAttempt(record.id, record.attempt, step.dispatchId),
  );
  if (attempt === undefined) {
    await ctx.gate.submitted(admission.token);
    const now = await ctx.store.get(record.id);
    if (now && !['submitting', 'submitted', 'running', 'cancelling'].includes(now.state))
      await ctx.gate.release(record.id);
    log.info(
      { state: now?.state, taskId: now?.task_id },
      'submit claim revoked: a task was attached meanwhile',
    );
    return done({ skipped: 'claim revoked' });
  }
  log.warn({ left: record.attempt, attempt }, 'resuming an interrupted submit (no task found): next attempt');
  await watchAbandoned(ctx, provider, record);
  const next = { ...record, attempt };
  delete next.submit_ended_at;
  return sendTask(ctx, provider, step, next, admission.token, log);
}

/**
 * A submit claim, replicated before anything is sent (see dispatch). When it is not, nothing was
 * sent: the gate's pending submit and the in-flight slot go back, the claim is marked ended (its
 * retry, which resumes the claim, need not wait out a request that was never made before it
 * looks for an orphan and moves on), and the step ends in REDIS_NOT_REPLICATED (put back).
 */
async function durableClaim<T>(
  ctx: EngineContext,
  jobId: string,
  token: string,
  claim: () => Promise<T>,
): Promise<T> {
  try {
    return await ctx.durable(claim);
  } catch (err) {
    if (isAppError(err) && err.code === 'REDIS_NOT_REPLICATED') {
      await ctx.gate.submitted(token).catch(() => undefined);
      await ctx.gate.release(jobId).catch(() => undefined);
      await ctx.store
        .transition(
          jobId,
          'submitting',
          { submit_ended_at: new Date().toISOString() },
          { from: ['submitting'] },
        )
        .catch(() => undefined);
    }
    throw err;
  }
}

/**
 * The gate is closed: put the job back in line and hold the whole queue, on every worker, for the
 * time the gate named (a rate window, a 429 pause) or until a slot frees (settle lifts the wait
 * early). Reservations are kept.
 */
function gateClosed(provider: ProviderBinding, admission: Admission & { ok: false }, log: Logger): Outcome {
  const ms = admission.reason === 'in_flight' ? provider.inFlightPollMs : admission.waitMs;
  log.debug({ reason: admission.reason, waitMs: ms }, 'provider gate closed; waiting');
  return { kind: 'pause', ms, reason: `provider gate: ${admission.reason}` };
}

async function overBudget(
  ctx: EngineContext,
  record: JobRecord,
  refusal: { scope: string; window: string; limitMicroUsd: number; usedMicroUsd: number },
  log: Logger,
): Promise<DispatchResult> {
  const blockedBy = `${refusal.scope}|${refusal.window}`;
  if (record.on_budget_exceeded === 'reject') {
    const message =
      `the ${refusal.window} budget of ${refusal.scope} ($${microUsdToUsd(refusal.limitMicroUsd)}, ` +
      `$${microUsdToUsd(refusal.usedMicroUsd)} used) cannot cover this job's estimate of ` +
      `$${microUsdToUsd(record.estimate_micro_usd ?? 0)}`;
    await ctx.store.transition(
      record.id,
      'failed',
      { error_code: 'BUDGET_EXCEEDED', error_message: message, finished_at: new Date().toISOString() },
      { from: ['queued'] },
    );
    log.warn({ blockedBy }, 'over budget: rejected');
    await notifyTerminal(ctx, record.id);
    return { failed: 'BUDGET_EXCEEDED' };
  }
  const parked = await ctx.parking.park(record, blockedBy);
  log.info({ blockedBy, parked }, 'over budget: parked until money frees up');
  return { parked: blockedBy };
}

/** POST the attempt's task (the claim is held), then record what the provider answered. */
async function sendTask(
  ctx: EngineContext,
  provider: ProviderBinding,
  step: DispatchStep,
  record: JobRecord,
  token: string,
  log: Logger,
): Promise<Outcome> {
  let task: TaskResult;
  try {
    task = await provider.client.run({
      input: record.input,
      webhook: webhookUrl(provider.publicUrl, ctx.config.WEBHOOK_SECRET, record.id, record.attempt),
      metadata: { recast_job_id: record.id, attempt: record.attempt },
    });
  } catch (err) {
    return submitFailed(ctx, provider, step, record, token, err, log);
  }
  await ctx.gate.submitted(token);
  provider.dispatchBackoff.reset();
  // Only a job's first submit: a retry's or a re-run's wait includes the earlier attempts.
  if (record.attempt === 1 && !record.reruns) {
    ctx.metrics?.queueToSubmitSeconds.observe(Math.max(0, Date.now() - Date.parse(record.created_at)) / 1000);
  }
  await recordTask(ctx, provider, step, record, task, log);
  return done({ taskId: task.id });
}

/**
 * Write the task id on the job (its claim is spent). The move only happens while the job holds no
 * task: a webhook for this very task can overtake us (settle recorded it then), and a task
 * attached by a settle while we were submitting is never replaced: ours is then a second task of
 * the attempt, stopped at once and followed to its end (charged as a duplicate if it is billed).
 */
async function recordTask(
  ctx: EngineContext,
  provider: ProviderBinding,
  step: DispatchStep,
  record: JobRecord,
  task: TaskResult,
  log: Logger,
): Promise<void> {
  const submittedAt = Date.now();
  const overdue = await overdueAt(ctx, record, submittedAt);
  const fields = {
    task_id: task.id,
    provider_status: task.status,
    submitted_at: new Date(submittedAt).toISOString(),
    submit_claim: null,
    ...(overdue !== undefined ? { overdue_ms: overdue } : {}),
  };
  const guard = { attempt: record.attempt, task: task.id };
  let moved = await ctx.store.transition(record.id, 'submitted', fields, guard);
  if (!moved.ok && moved.state === 'queued' && (await redoLostClaim(ctx, record, step.dispatchId, log))) {
    moved = await ctx.store.transition(record.id, 'submitted', fields, guard);
  }
  if (!moved.ok && moved.state === 'cancelling') {
    // Cancelled while we were submitting: keep the task id, and pass the cancel on to the provider.
    const kept = await ctx.store.transition(record.id, 'cancelling', fields, {
      from: ['cancelling'],
      ...guard,
    });
    if (kept.ok) {
      await provider.client
        .cancel(task.id)
        .catch((err: Error) =>
          log.warn({ err: err.message }, 'cancel at the provider failed; reconcile retries it'),
        );
      log.info({ taskId: task.id }, 'submitted, then cancelled at the provider');
    }
  }
  if (!moved.ok) {
    const now = await ctx.store.get(record.id);
    if (now?.task_id && now.task_id !== task.id) {
      await followDuplicate(ctx, provider, now, task.id, log);
      return;
    }
    log.info({ taskId: task.id, state: moved.state }, 'task id recorded by a faster update');
  }
  log.info({ taskId: task.id, attempt: record.attempt }, 'submitted');
  if (isTerminalStatus(task.status)) {
    await enqueueSettle(ctx.queues, {
      jobId: record.id,
      taskId: task.id,
      statusHint: task.status,
      recheck: 0,
    });
  }
}
