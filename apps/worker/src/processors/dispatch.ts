import type { Logger } from '@recast/core/infra';
import type { RecastMetrics } from '@recast/core/metrics';
import { DispatchPayloadSchema, enqueueSettle, isTerminalState, type JobRecord } from '@recast/core/model';
import { microUsdToUsd } from '@recast/core/money';
import {
  type InferenceClient,
  InferenceError,
  isTerminalStatus,
  mayHaveReachedProvider,
  type RateLimitBackoff,
  webhookUrl,
} from '@recast/core/provider';
import { type Job, Worker } from 'bullmq';
import type { WorkerContext } from '../context.js';
import { notifyTerminal, releaseUnbilled } from '../money.js';
import { adoptOrphan, findOrphan, type OrphanSearch } from '../orphans.js';

export interface DispatchDeps extends WorkerContext {
  publicUrl: string;
  webhookSecret: string;
  /** Waits after a 429 that named none: exponential backoff with jitter (RATE_LIMIT_FALLBACK_MS up). */
  rateLimitBackoff: RateLimitBackoff;
  /** How long dispatch waits before looking again when every in-flight slot is taken. */
  inFlightPollMs: number;
  /** The BullMQ worker running this processor: its manual rate limit pauses the whole queue. */
  worker: () => Worker;
  orphans: OrphanSearch;
  /** Observes how long a job waited from its creation to its first submit (metrics). */
  queueToSubmit?: RecastMetrics['queueToSubmitSeconds'] | undefined;
}

export type DispatchResult =
  | { taskId: string }
  | { skipped: string }
  | { failed: string }
  | { parked: string };

/**
 * `job.dispatch`: the one place money and pressure are checked before the provider is called.
 * queued → reserve the estimate against every budget (or park / reject) → admit (in-flight slot,
 * request rate, 429 pause; all workers share them) → submitting (attempt n) → POST /apps/run with
 * the attempt's webhook URL → submitted.
 */
export function createDispatchProcessor(deps: DispatchDeps) {
  return async (job: Job): Promise<DispatchResult> => {
    const { jobId } = DispatchPayloadSchema.parse(job.data);
    const record = await deps.store.get(jobId);
    if (!record) {
      deps.logger.warn({ jobId }, 'dispatch for a job with no record; dropping');
      return { skipped: 'missing' };
    }
    const log = deps.logger.child({ jobId, tenant: record.tenant, batchId: record.batch_id });

    if (record.state === 'submitting' && !record.task_id) {
      // Another dispatch of the same job (a duplicate pick) is submitting it right now: not ours.
      if (record.dispatch_id !== job.id) return { skipped: 'submitting elsewhere' };
      // This very dispatch died (or stalled) between claiming the job and recording a task id.
      // The provider may have accepted the task: adopt it rather than submit (and pay) twice.
      const orphan = await findOrphan(deps.client, record, deps.orphans);
      if (orphan) {
        await adoptOrphan(deps, record, orphan, log);
        return { taskId: orphan.id };
      }
      log.warn({ attempt: record.attempt }, 'resuming a submit that was interrupted (no orphan found)');
      const admission = await admitOrWait(deps, jobId, log);
      return submit(deps, job, record, record.attempt, log, admission.token);
    }
    if (record.state !== 'queued') {
      // A dispatch that reserved and then waited for the gate may come back to a job cancelled in
      // the meantime (its cancel found nothing reserved yet): give that money back.
      if (isTerminalState(record.state)) await releaseLeftover(deps, record);
      return { skipped: record.state };
    }

    const owner = { jobId, tenant: record.tenant, batch_id: record.batch_id };
    const amount = record.estimate_micro_usd ?? 0;
    const reserved = await deps.ledger.reserve(owner, amount);
    if (!reserved.ok) return overBudget(deps, record, reserved, log);

    const admission = await admitOrWait(deps, jobId, log);

    const attempt = record.attempt + 1;
    const moved = await deps.store.transition(
      jobId,
      'submitting',
      { attempt, reserved_micro_usd: amount, budget_blocked_by: null, dispatch_id: job.id ?? null },
      { from: ['queued'] },
    );
    if (!moved.ok) {
      // Someone else moved the job on (a duplicate dispatch won, or it was cancelled). The slot
      // belongs to the job, not to this dispatch: free it only if the job is not at the provider.
      await deps.gate.submitted(admission.token);
      if (!['submitting', 'submitted', 'running', 'cancelling'].includes(moved.state))
        await deps.gate.release(jobId);
      // Cancelled (or finished by a duplicate pick) between our read and our move: what we just
      // reserved is nobody's now, and nothing will settle it.
      if (isTerminalState(moved.state)) await releaseLeftover(deps, record);
      return { skipped: moved.state };
    }
    return submit(deps, job, { ...record, attempt }, attempt, log, admission.token);
  };
}

/** Release a finished job's reservation, if one is left (idempotent: nothing held, nothing done). */
async function releaseLeftover(deps: DispatchDeps, record: JobRecord): Promise<void> {
  const released = await deps.ledger.release({
    jobId: record.id,
    tenant: record.tenant,
    batch_id: record.batch_id,
  });
  if (released) await deps.parking.wake();
}

/**
 * Take an in-flight slot and a place in the request window, or put the job back in line: the
 * whole queue then waits, on every worker, for the time the gate named (a rate window, a 429
 * pause) or until a slot frees (settle lifts the wait early). Reservations are kept.
 */
async function admitOrWait(deps: DispatchDeps, jobId: string, log: Logger): Promise<{ token: string }> {
  const admission = await deps.gate.admit(jobId);
  if (admission.ok) return admission;
  const waitMs = admission.reason === 'in_flight' ? deps.inFlightPollMs : admission.waitMs;
  log.debug({ reason: admission.reason, waitMs }, 'provider gate closed; waiting');
  await deps.worker().rateLimit(waitMs);
  throw Worker.RateLimitError();
}

async function overBudget(
  deps: DispatchDeps,
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
    await deps.store.transition(
      record.id,
      'failed',
      { error_code: 'BUDGET_EXCEEDED', error_message: message, finished_at: new Date().toISOString() },
      { from: ['queued'] },
    );
    log.warn({ blockedBy }, 'over budget: rejected');
    await notifyTerminal(deps, record.id);
    return { failed: 'BUDGET_EXCEEDED' };
  }
  const parked = await deps.parking.park(record, blockedBy);
  log.info({ blockedBy, parked }, 'over budget: parked until money frees up');
  return { parked: blockedBy };
}

async function submit(
  deps: DispatchDeps,
  job: Job,
  record: JobRecord,
  attempt: number,
  log: Logger,
  token: string,
): Promise<DispatchResult> {
  const jobId = record.id;
  let task: Awaited<ReturnType<InferenceClient['run']>>;
  try {
    task = await deps.client.run({
      input: record.input,
      webhook: webhookUrl(deps.publicUrl, deps.webhookSecret, jobId, attempt),
      metadata: { recast_job_id: jobId, attempt },
    });
  } catch (err) {
    const error =
      err instanceof InferenceError
        ? err
        : new InferenceError('PROVIDER_UNAVAILABLE', {
            detail: (err as Error).message,
            retryable: true,
            cause: err,
          });
    const pauseMs =
      error.code === 'PROVIDER_RATE_LIMITED' ? (error.retryAfterMs ?? deps.rateLimitBackoff.next()) : 0;
    await deps.gate.submitted(token, pauseMs);
    return handleSubmitError(deps, job, record, attempt, error, pauseMs, log);
  }
  await deps.gate.submitted(token);
  deps.rateLimitBackoff.reset();
  // Only a job's first submit: a retry's or a re-run's wait includes the earlier attempts.
  if (attempt === 1 && !record.reruns) {
    deps.queueToSubmit?.observe(Math.max(0, Date.now() - Date.parse(record.created_at)) / 1000);
  }

  const moved = await deps.store.transition(
    jobId,
    'submitted',
    { task_id: task.id, provider_status: task.status, submitted_at: new Date().toISOString() },
    { attempt },
  );
  if (!moved.ok && moved.state === 'cancelling') {
    // Cancelled while we were submitting: keep the task id, and pass the cancel on to the provider.
    await deps.store.transition(
      jobId,
      'cancelling',
      { task_id: task.id, provider_status: task.status, submitted_at: new Date().toISOString() },
      { from: ['cancelling'], attempt },
    );
    await deps.client
      .cancel(task.id)
      .catch((err: Error) =>
        log.warn({ err: err.message }, 'cancel at the provider failed; reconcile retries it'),
      );
    log.info({ taskId: task.id }, 'submitted, then cancelled at the provider');
  } else if (!moved.ok) {
    // A webhook for this very task can overtake us; settle recorded the task id then.
    log.info({ taskId: task.id, state: moved.state }, 'task id recorded by a faster update');
  }
  log.info({ taskId: task.id, attempt }, 'submitted');
  if (isTerminalStatus(task.status)) {
    await enqueueSettle(deps.queues, { jobId, taskId: task.id, statusHint: task.status, recheck: 0 });
  }
  return { taskId: task.id };
}

async function handleSubmitError(
  deps: DispatchDeps,
  job: Job,
  record: JobRecord,
  attempt: number,
  error: InferenceError,
  pauseMs: number,
  log: Logger,
): Promise<DispatchResult> {
  const jobId = record.id;
  if (error.retryable && mayHaveReachedProvider(error)) {
    // The provider may have accepted the task although no answer came back (a timeout, a 5xx
    // from a gateway, a dropped connection): submitting again could be a second bill. The job
    // stays `submitting` with this attempt; the retry of this dispatch (or reconciliation, if
    // this worker dies) first looks for the task by its webhook URL and adopts it, and only
    // submits again when the provider has none. The slot is freed; the resumed submit re-admits.
    await deps.gate.release(jobId);
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (!lastAttempt) {
      log.warn(
        { err: error.message, code: error.code, attemptsMade: job.attemptsMade + 1 },
        'submit answer lost or failed; will look for the task before submitting again',
      );
      throw error;
    }
    const orphan = await findOrphan(deps.client, record, deps.orphans).catch(() => undefined);
    if (orphan) {
      await adoptOrphan(deps, record, orphan, log);
      return { taskId: orphan.id };
    }
  } else if (error.retryable) {
    // Nothing was accepted: free the slot, give the attempt number back and go back in line
    // (the reservation stays: the job will be submitted again).
    await deps.gate.release(jobId);
    await deps.store.transition(jobId, 'queued', { attempt: attempt - 1 }, { from: ['submitting'], attempt });
    if (pauseMs > 0) {
      // A 429 pauses every worker (the gate's pause, and this queue's BullMQ rate limit) for as
      // long as the provider asked, and does not use up one of this job's attempts.
      log.warn({ waitMs: pauseMs }, 'provider rate limit: pausing dispatch');
      await deps.worker().rateLimit(pauseMs);
      throw Worker.RateLimitError();
    }
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (!lastAttempt) {
      log.warn(
        { err: error.message, code: error.code, attemptsMade: job.attemptsMade + 1 },
        'transient provider error; will retry',
      );
      throw error;
    }
  }
  const failed = await deps.store.transition(
    jobId,
    'failed',
    { error_code: error.code, error_message: error.message, finished_at: new Date().toISOString() },
    { from: ['queued', 'submitting'] },
  );
  if (failed.ok) await releaseUnbilled(deps, record);
  log.error({ code: error.code, err: error.message, recorded: failed.ok }, 'submit failed permanently');
  return { failed: error.code };
}
