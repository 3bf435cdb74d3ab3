import type { JobState } from '@recast/core/contract';
import type { Logger } from '@recast/core/infra';
import { enqueueRetain, enqueueSettle, type JobRecord, SettlePayloadSchema } from '@recast/core/model';
import { costOf, utcDay } from '@recast/core/money';
import {
  billedSeconds,
  type InferenceClient,
  isTerminalStatus,
  outputVideoUrl,
  type TaskStatusName,
  taskError,
} from '@recast/core/provider';
import type { Job } from 'bullmq';
import type { WorkerContext } from '../context.js';
import { chargeBilled, releaseUnbilled } from '../money.js';

export interface SettleDeps extends WorkerContext {
  recheckMs: number;
  maxRechecks: number;
}

/** Where a provider status puts a Recast job. */
function targetState(status: TaskStatusName): JobState | undefined {
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
  }
}

/**
 * `job.settle`: apply a provider update to a job. The webhook that triggered it is only a hint:
 * the task is read back with GET /tasks/:id, the move is a compare-and-set (so duplicates and
 * stale updates do nothing), and on a terminal state the money is settled exactly once: the
 * actual cost charged (idempotent by job id) and the reservation released, billed or not.
 */
export function createSettleProcessor(deps: SettleDeps) {
  return async (job: Job) => {
    const payload = SettlePayloadSchema.parse(job.data);
    const { jobId, taskId } = payload;
    const record = await deps.store.get(jobId);
    if (!record) return { skipped: 'missing' };
    const log = deps.logger.child({ jobId, tenant: record.tenant, batchId: record.batch_id, taskId });
    // Which task may move this job: the one it recorded; with none recorded, only a task of the
    // current attempt while that attempt is being submitted (a webhook can overtake the dispatch
    // recording its task id). A late or duplicated webhook of an earlier attempt (say, the failed
    // task a provider retry replaced) must not act on the attempt that followed it.
    const staleAttempt = payload.attempt !== undefined && payload.attempt !== record.attempt;
    const beingSubmitted = ['submitting', 'cancelling'].includes(record.state);
    if (record.task_id ? record.task_id !== taskId : staleAttempt || !beingSubmitted) {
      // A task for this job that is not its current one: an earlier attempt's (terminal, fine), or
      // a duplicate submission that slipped through the crash window. Stop a live one spending.
      const status = await deps.client.getStatus(taskId).catch(() => undefined);
      if (status && !isTerminalStatus(status.status)) {
        await deps.client.cancel(taskId).catch(() => undefined);
        log.error(
          { recorded: record.task_id },
          'a second live task for this job: cancelled it at the provider',
        );
      } else log.warn({ recorded: record.task_id }, 'update for a task this job does not own; ignoring');
      return { skipped: 'foreign-task' };
    }

    const task = await deps.client.getTask(taskId);
    const to = targetState(task.status);
    if (!to) return { skipped: `status ${String(task.rawStatus)}` };
    if (to === 'completed' || to === 'failed' || to === 'cancelled')
      return settleTerminal(deps, record, task, to, log);

    const moved = await deps.store.transition(jobId, to, { task_id: taskId, provider_status: task.status });
    log.info({ to, moved: moved.ok, state: moved.state }, 'settled provider update');
    if (payload.recheck < deps.maxRechecks) {
      // The webhook came before the task was terminal (or was stale): look again later.
      await enqueueSettle(
        deps.queues,
        { ...payload, statusHint: 'recheck', recheck: payload.recheck + 1 },
        { delay: deps.recheckMs },
      );
    }
    return { state: moved.state };
  };
}

type Task = Awaited<ReturnType<InferenceClient['getTask']>>;

async function settleTerminal(
  deps: SettleDeps,
  record: JobRecord,
  task: Task,
  to: 'completed' | 'failed' | 'cancelled',
  log: Logger,
) {
  const seconds = billedSeconds(task);
  if (to === 'completed' && seconds === undefined) {
    // Without the billed seconds we cannot price the job; retry (the provider may still be writing it).
    throw new Error(`completed task ${task.id} has no output_meta.outputs[0].seconds`);
  }
  const resolution = record.input.resolution;
  const cost = seconds === undefined ? undefined : costOf(deps.prices, resolution, seconds);
  const finishedAt = new Date();
  const fields: Partial<Record<keyof JobRecord, string | number | null>> = {
    task_id: task.id,
    provider_status: task.status,
    finished_at: finishedAt.toISOString(),
  };
  if (to === 'completed') {
    fields.output_url = outputVideoUrl(task) ?? null;
    if (deps.retention) {
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
  if (to === 'failed') {
    fields.error_code = 'PROVIDER_TASK_FAILED';
    fields.error_message = taskError(task) ?? 'the provider reported the task as failed';
  }
  if (cost) {
    fields.billed_ms = cost.ms;
    fields.cost_micro_usd = cost.microUsd;
    fields.price_version = deps.prices.version;
  }
  // A job being cancelled is not retried: its failed task is its end.
  const retry =
    record.state !== 'cancelling' && (record.provider_failures ?? 0) < (record.max_provider_retries ?? 0);
  if (to === 'failed' && retry) {
    return retryAfterProviderFailure(deps, record, task, cost, log);
  }
  const moved = await deps.store.transition(record.id, to, fields);
  // Settle money from what the record holds: after a crash between the move and the money, a
  // retry of this step finds the job terminal already and still settles it, exactly once.
  const settled = moved.ok ? undefined : await deps.store.get(record.id);
  if (!moved.ok && settled?.state !== to) {
    log.warn({ state: moved.state, to }, 'terminal update refused by state');
    return { state: moved.state };
  }
  const billedMs = settled ? settled.billed_ms : cost?.ms;
  if (billedMs === undefined) {
    await releaseUnbilled(deps, record);
    log.info({ to }, `job ${to}, nothing billed`);
    return { state: to, charged: false };
  }
  const microUsd = settled?.cost_micro_usd ?? cost?.microUsd ?? 0;
  const charged = await chargeBilled(deps, {
    jobId: record.id,
    ...(record.reruns ? { chargeId: `${record.id}#rerun-${record.reruns}` } : {}),
    tenant: record.tenant,
    batch_id: record.batch_id,
    day: utcDay(new Date(settled?.finished_at ?? finishedAt.toISOString())),
    resolution,
    ms: billedMs,
    microUsd,
    priceVersion: settled?.price_version ?? deps.prices.version,
  });
  if (charged && record.state === 'cancelling' && record.batch_id) {
    // Billed although being cancelled; counted once (`charged` is true only for the settle that
    // wrote the charge).
    await deps.batches.countCancelBilled(record.batch_id, to === 'cancelled');
  }
  // Only now, with the money settled: keeping the output can fail or lag without touching it.
  if (to === 'completed' && deps.retention) {
    await enqueueRetain(deps.queues, { jobId: record.id, taskId: task.id }, deps.retention);
  }
  log.info(
    {
      seconds: billedMs / 1000,
      microUsd,
      estimateMicroUsd: record.estimate_micro_usd,
      resolution,
      charged,
    },
    `job ${to}`,
  );
  return { state: to, charged };
}

/**
 * The provider failed the task and the job allows another try: a new attempt, back at the head
 * of its tenant's line. A billed failure is charged at once against the job's reservation (which
 * it consumes), so the retry reserves again at dispatch and waits for money like any other job:
 * reserved + spent never passes a limit, and every attempt's cost is accounted. Move first, then
 * money: a settle retried after a crash between the two finds the move done (the failed task
 * named on the record) and finishes the charge, which is idempotent per attempt.
 */
async function retryAfterProviderFailure(
  deps: SettleDeps,
  record: JobRecord,
  task: Task,
  cost: { ms: number; microUsd: number } | undefined,
  log: Logger,
) {
  const failures = (record.provider_failures ?? 0) + 1;
  const multi = deps.store.multi();
  deps.store.transitionIn(
    multi,
    record.id,
    'queued',
    {
      provider_failures: failures,
      failed_task_id: task.id,
      task_id: null,
      provider_status: null,
      dispatch_id: null,
      error_code: 'PROVIDER_TASK_FAILED',
      error_message: taskError(task) ?? 'the provider reported the task as failed',
      retried_cost_micro_usd: (record.retried_cost_micro_usd ?? 0) + (cost?.microUsd ?? 0),
      ...(cost ? { reserved_micro_usd: null } : {}),
    },
    { from: ['submitting', 'submitted', 'running'], attempt: record.attempt },
  );
  deps.fair.pushIn(multi, record.id, record.tenant, 'front');
  const results = (await multi.exec()) ?? [];
  const moved = (results[0]?.[1] as unknown[] | undefined)?.[0] === 1;
  if (!moved) {
    const now = await deps.store.get(record.id);
    // Not this settle's move: the job went elsewhere (a duplicate's retry pushed it into line again,
    // which the line's dedupe absorbs). Its own retry of this very task may still owe the charge.
    if (now?.failed_task_id !== task.id || !cost)
      return { state: now?.state ?? record.state, retried: false };
  }
  await deps.gate.release(record.id);
  if (cost) {
    await deps.ledger.charge({
      jobId: record.id,
      chargeId: `${record.id}#attempt-${record.attempt}`,
      tenant: record.tenant,
      batch_id: record.batch_id,
      day: utcDay(new Date()),
      resolution: record.input.resolution,
      ms: cost.ms,
      microUsd: cost.microUsd,
      priceVersion: deps.prices.version,
    });
    // What the charge freed beyond the actual cost may let parked jobs (this one too) go on.
    await deps.parking.wake();
  }
  log.warn(
    { failures, max: record.max_provider_retries, billedMicroUsd: cost?.microUsd ?? 0 },
    'provider failed the task: retrying as a new attempt',
  );
  void deps.fair.kick();
  return { state: 'queued' as const, retried: true };
}
