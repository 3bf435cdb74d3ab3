import {
  billedSeconds,
  type CostLedger,
  costOf,
  enqueueSettle,
  type InferenceClient,
  type JobRecord,
  type JobState,
  type JobStore,
  type Logger,
  outputVideoUrl,
  type PriceTable,
  type Queues,
  SettlePayloadSchema,
  type TaskStatusName,
  taskError,
  utcDay,
} from '@recast/core';
import type { Job } from 'bullmq';

export interface SettleDeps {
  store: JobStore;
  ledger: CostLedger;
  queues: Queues;
  client: InferenceClient;
  prices: PriceTable;
  logger: Logger;
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
 * stale updates do nothing), and the cost is charged to the ledger idempotently by job id.
 */
export function createSettleProcessor(deps: SettleDeps) {
  return async (job: Job) => {
    const payload = SettlePayloadSchema.parse(job.data);
    const { jobId, taskId } = payload;
    const record = await deps.store.get(jobId);
    if (!record) return { skipped: 'missing' };
    const log = deps.logger.child({ jobId, tenant: record.tenant, taskId });
    if (record.task_id && record.task_id !== taskId) {
      log.warn({ recorded: record.task_id }, 'update for a task this job does not own; ignoring');
      return { skipped: 'foreign-task' };
    }

    const task = await deps.client.getTask(taskId);
    const to = targetState(task.status);
    if (!to) return { skipped: `status ${String(task.rawStatus)}` };

    if (to === 'completed') return settleCompleted(deps, record, task, log);

    const fields: Partial<Record<keyof JobRecord, string | number | null>> = {
      task_id: taskId,
      provider_status: task.status,
    };
    if (to === 'failed' || to === 'cancelled') {
      fields.finished_at = new Date().toISOString();
      if (to === 'failed') {
        fields.error_code = 'PROVIDER_TASK_FAILED';
        fields.error_message = taskError(task) ?? 'the provider reported the task as failed';
      }
    }
    const moved = await deps.store.transition(jobId, to, fields);
    log.info({ to, moved: moved.ok, state: moved.state }, 'settled provider update');

    if (to !== 'failed' && to !== 'cancelled' && payload.recheck < deps.maxRechecks) {
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

async function settleCompleted(
  deps: SettleDeps,
  record: JobRecord,
  task: Awaited<ReturnType<InferenceClient['getTask']>>,
  log: Logger,
) {
  const seconds = billedSeconds(task);
  if (seconds === undefined) {
    // Without the billed seconds we cannot price the job; retry (the provider may still be writing it).
    throw new Error(`completed task ${task.id} has no output_meta.outputs[0].seconds`);
  }
  const resolution = record.input.resolution;
  const { ms, microUsd } = costOf(deps.prices, resolution, seconds);
  const finishedAt = new Date();
  const moved = await deps.store.transition(record.id, 'completed', {
    task_id: task.id,
    provider_status: task.status,
    output_url: outputVideoUrl(task) ?? null,
    billed_ms: ms,
    cost_micro_usd: microUsd,
    price_version: deps.prices.version,
    finished_at: finishedAt.toISOString(),
  });
  // Charge from what the record holds: after a crash between the move and the charge, a retry of
  // this step finds the job completed already and still charges it, exactly once.
  const settled = moved.ok ? undefined : await deps.store.get(record.id);
  if (!moved.ok && settled?.state !== 'completed') {
    log.warn({ state: moved.state }, 'completed update refused by state');
    return { state: moved.state };
  }
  const charged = await deps.ledger.charge({
    jobId: record.id,
    day: utcDay(new Date(settled?.finished_at ?? finishedAt.toISOString())),
    resolution,
    ms: settled?.billed_ms ?? ms,
    microUsd: settled?.cost_micro_usd ?? microUsd,
    priceVersion: settled?.price_version ?? deps.prices.version,
  });
  log.info(
    {
      seconds: (settled?.billed_ms ?? ms) / 1000,
      microUsd: settled?.cost_micro_usd ?? microUsd,
      resolution,
      charged,
    },
    'job completed',
  );
  return { state: 'completed' as const, charged };
}
