import { assertNever } from '../errors/app-error.js';
import type { Logger } from '../infra/logger.js';
import { enqueueRetain, enqueueSettle, type SettlePayload } from '../model/catalog.js';
import type { JobRecord } from '../model/record.js';
import type { JobState } from '../model/states.js';
import { utcDay } from '../money/ledger.js';
import { costOf } from '../money/price-table.js';
import { isTerminalStatus, parseTaskStatus, type TaskStatusName } from '../provider/status.js';
import { billedSeconds, outputVideoUrl, type Task, taskError } from '../provider/task.js';
import { belongsTo } from '../provider/webhook-token.js';
import { done, type EngineContext, jobLogger, providerOf, type StepOutcome } from './context.js';
import { type DuplicateResult, settleDuplicate } from './duplicates.js';
import { chargeBilled, ownerOf, releaseUnbilled } from './terminal.js';

export type SettleResult =
  | { skipped: string }
  | { state: JobState; charged?: boolean; retried?: boolean }
  | DuplicateResult;

/**
 * What a settle's hint claims, when it names a status (a webhook's status text, or a poll's
 * `poll-<status>`); undefined for the other hints (a cancel, an adoption, a re-check, a duplicate)
 * and for bare numbers, whose meaning depends on the provider's numbering.
 */
export function claimedStatus(hint: string | undefined): TaskStatusName | undefined {
  if (!hint) return undefined;
  const raw = hint.startsWith('poll-') ? hint.slice('poll-'.length) : hint;
  if (/^\d+$/.test(raw)) return undefined;
  const status = parseTaskStatus(undefined, raw);
  return status === 'unknown' ? undefined : status;
}

/** Where a provider status puts a Recast job (ARCHITECTURE.md: 1-2 submitted, 3-9 running). */
export function targetState(status: TaskStatusName): JobState | undefined {
  switch (status) {
    case 'received':
    case 'queued':
      return 'submitted';
    case 'dispatched':
    case 'preparing':
    case 'serving':
    case 'setting_up':
    case 'running':
    case 'cancelling':
    case 'uploading':
      return 'running';
    case 'completed':
    case 'failed':
    case 'cancelled':
      return status;
    case 'unknown':
      return undefined;
    default:
      return assertNever(status);
  }
}

/**
 * `job.settle`: apply a provider update to a job. The webhook that triggered it is only a hint:
 * the task is read back with GET /tasks/:id, the move is a compare-and-set (so duplicates and
 * stale updates do nothing), and on a terminal state the money is settled exactly once: the
 * actual cost charged (idempotent by charge and by task) and the reservation released, billed or
 * not. Attaching a task to a job that was being submitted revokes the attempt's submit claim.
 */
export async function settle(ctx: EngineContext, payload: SettlePayload): Promise<StepOutcome<SettleResult>> {
  const provider = providerOf(ctx);
  const record = await ctx.store.get(payload.jobId);
  if (!record) return done({ skipped: 'missing' });
  const log = jobLogger(ctx, record, payload.taskId);
  // Which task may move this job: the one it recorded; with none recorded, only a task of the
  // current attempt while that attempt is being submitted (a webhook can overtake the dispatch
  // recording its task id). Any other is a second task for this job: a duplicate.
  const staleAttempt = payload.attempt !== undefined && payload.attempt !== record.attempt;
  const beingSubmitted = record.state === 'submitting' || record.state === 'cancelling';
  if (record.task_id ? record.task_id !== payload.taskId : staleAttempt || !beingSubmitted) {
    return done(await settleDuplicate(ctx, provider, record, payload, log));
  }

  const claimed = claimedStatus(payload.statusHint);
  const claimedMove = claimed === undefined ? undefined : targetState(claimed);
  if (
    payload.recheck === 0 &&
    claimed !== undefined &&
    !isTerminalStatus(claimed) &&
    record.task_id === payload.taskId &&
    (record.state === 'submitted' || record.state === 'running') &&
    (claimedMove === record.state || (claimedMove === 'submitted' && record.state === 'running'))
  ) {
    // A webhook (or a poll) of a status that would not move the job (received, queued, dispatched,
    // preparing: all `submitted`; uploading: `running`): nothing to confirm, so no task read. Reads
    // are a budget (1,000 a minute for the account): one per such webhook, and a chain of
    // re-checks after it, would spend it on nothing while the reconciler polls when overdue.
    return done({ state: record.state });
  }
  const task = await provider.client.getTask(payload.taskId);
  if (!record.task_id && task.webhook !== undefined && !belongsTo(task, record.id, record.attempt)) {
    // Not this attempt's task after all (its own webhook URL says so): never attach it.
    return done(await settleDuplicate(ctx, provider, record, payload, log));
  }
  const to = targetState(task.status);
  if (!to) return done({ skipped: `status ${String(task.rawStatus)}` });
  if (to === 'completed' || to === 'failed' || to === 'cancelled')
    return done(await settleTerminal(ctx, record, task, to, log));

  const moved = await ctx.store.transition(
    record.id,
    to,
    { task_id: task.id, provider_status: task.status, submit_claim: null },
    { task: task.id },
  );
  log.info({ to, moved: moved.ok, state: moved.state }, 'settled provider update');
  // Re-checked only where the task was expected to have ended (a terminal claim the provider did
  // not confirm yet, a cancel, an adoption, a chain already going): a webhook of a status on the
  // way is followed by the next webhook, and a lost one by the reconciler once the task is overdue.
  const expectedEnd = claimed === undefined || isTerminalStatus(claimed) || payload.recheck > 0;
  if (expectedEnd && payload.recheck < provider.maxRechecks) {
    // The webhook came before the task was terminal (or was stale): look again later.
    await enqueueSettle(
      ctx.queues,
      { ...payload, statusHint: 'recheck', recheck: payload.recheck + 1 },
      { delay: provider.recheckMs },
    );
  }
  return done({ state: moved.state });
}

async function settleTerminal(
  ctx: EngineContext,
  record: JobRecord,
  task: Task,
  to: 'completed' | 'failed' | 'cancelled',
  log: Logger,
): Promise<SettleResult> {
  const seconds = billedSeconds(task);
  if (to === 'completed' && seconds === undefined) {
    // Without the billed seconds we cannot price the job; retry (the provider may still be writing it).
    throw new Error(`completed task ${task.id} has no output_meta.outputs[0].seconds`);
  }
  const resolution = record.input.resolution;
  const cost = seconds === undefined ? undefined : costOf(ctx.prices, resolution, seconds);
  const finishedAt = new Date();
  const fields: Partial<Record<keyof JobRecord, string | number | null>> = {
    task_id: task.id,
    provider_status: task.status,
    finished_at: finishedAt.toISOString(),
    submit_claim: null,
  };
  if (to === 'completed') {
    fields.output_url = outputVideoUrl(task) ?? null;
    if (ctx.retention) {
      // A re-run starts its copy afresh: nothing of the previous run's copy describes this one.
      Object.assign(fields, {
        output_retention: 'pending',
        output_bytes: null,
        output_sha256: null,
        output_stored_at: null,
        output_retention_error: null,
        output_retention_attempts: null,
        duration_check: null,
      });
    }
  }
  // A task cancelled for its deadline (or failed while being cancelled for it) fails the job.
  const deadline = record.state === 'cancelling' && record.deadline_exceeded_at !== undefined;
  if (deadline && to === 'cancelled') to = 'failed';
  if (to === 'failed' && deadline) {
    fields.error_code = 'DEADLINE_EXCEEDED';
    fields.error_message = record.error_message ?? 'the provider did not finish the task in time';
  } else if (to === 'failed') {
    fields.error_code = 'PROVIDER_TASK_FAILED';
    fields.error_message = taskError(task) ?? 'the provider reported the task as failed';
  }
  if (cost) {
    fields.billed_ms = cost.ms;
    fields.cost_micro_usd = cost.microUsd;
    fields.price_version = ctx.prices.version;
  }
  // A job being cancelled is not retried: its failed task is its end.
  const retry =
    record.state !== 'cancelling' && (record.provider_failures ?? 0) < (record.max_provider_retries ?? 0);
  if (to === 'failed' && retry) return retryAfterProviderFailure(ctx, record, task, cost, log);

  const moved = await ctx.store.transition(record.id, to, fields, { task: task.id });
  // Settle money from what the record holds: after a crash between the move and the money, a
  // retry of this step finds the job terminal already and still settles it, exactly once.
  const settled = moved.ok ? undefined : await ctx.store.get(record.id);
  if (!moved.ok && (settled?.state !== to || settled.task_id !== task.id)) {
    log.warn({ state: moved.state, to }, 'terminal update refused by state');
    return { state: moved.state };
  }
  const billedMs = settled ? settled.billed_ms : cost?.ms;
  if (billedMs === undefined) {
    await releaseUnbilled(ctx, record);
    log.info({ to }, `job ${to}, nothing billed`);
    return { state: to, charged: false };
  }
  const microUsd = settled?.cost_micro_usd ?? cost?.microUsd ?? 0;
  const charged = await chargeBilled(ctx, {
    ...ownerOf(record),
    ...(record.reruns ? { chargeId: `${record.id}#rerun-${record.reruns}` } : {}),
    taskId: task.id,
    attempt: record.attempt,
    kind: 'run',
    day: utcDay(new Date(settled?.finished_at ?? finishedAt.toISOString())),
    resolution,
    ms: billedMs,
    microUsd,
    priceVersion: settled?.price_version ?? ctx.prices.version,
  });
  if (charged && record.state === 'cancelling' && !deadline && record.batch_id) {
    // Billed although being cancelled; counted once (`charged` is true only for the settle that
    // wrote the charge).
    await ctx.batches.countCancelBilled(record.batch_id, to === 'cancelled');
  }
  if (moved.ok && to === 'completed') {
    // The moving figure behind ETAs and overdue polls, once per task (the move).
    const took = processingMs(task, record, finishedAt);
    if (took !== undefined) {
      await ctx.processing
        .observe(record.input, took, billedMs / 1000, slotMs(record, finishedAt))
        .catch((err: Error) => log.warn({ err: err.message }, 'processing time not recorded'));
    }
  }
  // Only now, with the money settled: keeping the output can fail or lag without touching it.
  if (to === 'completed' && ctx.retention) {
    await enqueueRetain(ctx.queues, { jobId: record.id, taskId: task.id }, ctx.retention);
  }
  log.info(
    { seconds: billedMs / 1000, microUsd, estimateMicroUsd: record.estimate_micro_usd, resolution, charged },
    `job ${to}`,
  );
  return { state: to, charged };
}

/**
 * What the provider took with a task: from its creation to its last update on the provider's own
 * clock (a lost webhook found late by a poll does not make the task look slow, which would make
 * the next ones be polled later still); from our submit to now when the provider gives no times.
 */
function processingMs(task: Task, record: JobRecord, finishedAt: Date): number | undefined {
  const created = task.createdAt ? Date.parse(task.createdAt) : Number.NaN;
  const updated = task.updatedAt ? Date.parse(task.updatedAt) : Number.NaN;
  if (Number.isFinite(created) && Number.isFinite(updated) && updated > created) return updated - created;
  return record.submitted_at ? finishedAt.getTime() - Date.parse(record.submitted_at) : undefined;
}

/** How long the task held its in-flight slot: from the claim (right after the gate) to now. */
function slotMs(record: JobRecord, finishedAt: Date): number | undefined {
  const from = record.claimed_at ?? record.submitted_at;
  return from ? finishedAt.getTime() - Date.parse(from) : undefined;
}

/**
 * The provider failed the task and the job allows another try: a new attempt, back at the head
 * of its tenant's line. A billed failure is charged at once against the job's reservation (which
 * it consumes), so the retry reserves again at dispatch and waits for money like any other job:
 * reserved + spent never passes a limit, and every attempt's cost is accounted. Move first, then
 * money: a settle retried after a crash between the two finds the move done (the failed task
 * named on the record) and finishes the charge, which is idempotent per attempt and per task.
 */
async function retryAfterProviderFailure(
  ctx: EngineContext,
  record: JobRecord,
  task: Task,
  cost: { ms: number; microUsd: number } | undefined,
  log: Logger,
): Promise<SettleResult> {
  const failures = (record.provider_failures ?? 0) + 1;
  const multi = ctx.store.multi();
  ctx.store.transitionIn(
    multi,
    record.id,
    'queued',
    {
      provider_failures: failures,
      failed_task_id: task.id,
      task_id: null,
      provider_status: null,
      dispatch_id: null,
      submit_claim: null,
      claimed_at: null,
      submit_ended_at: null,
      error_code: 'PROVIDER_TASK_FAILED',
      error_message: taskError(task) ?? 'the provider reported the task as failed',
      retried_cost_micro_usd: (record.retried_cost_micro_usd ?? 0) + (cost?.microUsd ?? 0),
      ...(cost ? { reserved_micro_usd: null } : {}),
    },
    { from: ['submitting', 'submitted', 'running'], attempt: record.attempt, task: task.id },
  );
  ctx.fair.pushIn(multi, record.id, record.tenant, 'front');
  const results = (await multi.exec()) ?? [];
  const moved = (results[0]?.[1] as unknown[] | undefined)?.[0] === 1;
  if (!moved) {
    const now = await ctx.store.get(record.id);
    // Not this settle's move: the job went elsewhere (a duplicate's retry pushed it into line again,
    // which the line's dedupe absorbs). Its own retry of this very task may still owe the charge.
    if (now?.failed_task_id !== task.id || !cost)
      return { state: now?.state ?? record.state, retried: false };
  }
  await ctx.gate.release(record.id);
  if (cost) {
    await ctx.ledger.charge({
      ...ownerOf(record),
      chargeId: `${record.id}#attempt-${record.attempt}`,
      taskId: task.id,
      attempt: record.attempt,
      kind: 'retried_failure',
      day: utcDay(new Date()),
      resolution: record.input.resolution,
      ms: cost.ms,
      microUsd: cost.microUsd,
      priceVersion: ctx.prices.version,
    });
    // What the charge freed beyond the actual cost may let parked jobs (this one too) go on.
    await ctx.parking.wake();
  }
  log.warn(
    { failures, max: record.max_provider_retries, billedMicroUsd: cost?.microUsd ?? 0 },
    'provider failed the task: retrying as a new attempt',
  );
  void ctx.fair.kick();
  return { state: 'queued', retried: true };
}
