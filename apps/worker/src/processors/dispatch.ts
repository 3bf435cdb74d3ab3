import {
  DispatchPayloadSchema,
  enqueueSettle,
  type InferenceClient,
  InferenceError,
  isTerminalStatus,
  type JobStore,
  type Logger,
  type Queues,
  webhookUrl,
} from '@recast/core';
import { type Job, Worker } from 'bullmq';

export interface DispatchDeps {
  store: JobStore;
  queues: Queues;
  client: InferenceClient;
  publicUrl: string;
  webhookSecret: string;
  logger: Logger;
  rateLimitFallbackMs: number;
  /** The BullMQ worker running this processor: its manual rate limit pauses the whole queue. */
  worker: () => Worker;
}

export type DispatchResult = { taskId: string } | { skipped: string } | { failed: string };

/**
 * `job.dispatch`: submit one job to the provider and record its task id.
 * queued → submitting (attempt n) → POST /apps/run with the attempt's webhook URL → submitted.
 */
export function createDispatchProcessor(deps: DispatchDeps) {
  return async (job: Job): Promise<DispatchResult> => {
    const { jobId } = DispatchPayloadSchema.parse(job.data);
    const record = await deps.store.get(jobId);
    if (!record) {
      deps.logger.warn({ jobId }, 'dispatch for a job with no record; dropping');
      return { skipped: 'missing' };
    }
    const log = deps.logger.child({ jobId, tenant: record.tenant });

    let attempt: number;
    if (record.state === 'queued') {
      attempt = record.attempt + 1;
      const moved = await deps.store.transition(jobId, 'submitting', { attempt }, { from: ['queued'] });
      if (!moved.ok) return { skipped: moved.state };
    } else if (record.state === 'submitting' && !record.task_id) {
      // An earlier run of this dispatch died between claiming the job and recording a task id.
      attempt = record.attempt;
      log.warn({ attempt }, 'resuming a submit that was interrupted');
    } else {
      return { skipped: record.state };
    }

    let task: Awaited<ReturnType<InferenceClient['run']>>;
    try {
      task = await deps.client.run({
        input: record.input,
        webhook: webhookUrl(deps.publicUrl, deps.webhookSecret, jobId, attempt),
        metadata: { recast_job_id: jobId, attempt },
      });
    } catch (err) {
      return handleSubmitError(deps, job, jobId, attempt, err, log);
    }

    const moved = await deps.store.transition(
      jobId,
      'submitted',
      { task_id: task.id, provider_status: task.status, submitted_at: new Date().toISOString() },
      { attempt },
    );
    if (!moved.ok) {
      // A webhook for this very task can overtake us; settle recorded the task id then.
      log.info({ taskId: task.id, state: moved.state }, 'task id recorded by a faster update');
    }
    log.info({ taskId: task.id, attempt }, 'submitted');
    if (isTerminalStatus(task.status)) {
      await enqueueSettle(deps.queues, { jobId, taskId: task.id, statusHint: task.status, recheck: 0 });
    }
    return { taskId: task.id };
  };
}

async function handleSubmitError(
  deps: DispatchDeps,
  job: Job,
  jobId: string,
  attempt: number,
  err: unknown,
  log: Logger,
): Promise<DispatchResult> {
  const error =
    err instanceof InferenceError
      ? err
      : new InferenceError('PROVIDER_UNAVAILABLE', {
          detail: (err as Error).message,
          retryable: true,
          cause: err,
        });
  if (error.retryable) {
    // Nothing was accepted: give the attempt number back and put the job back in line.
    await deps.store.transition(jobId, 'queued', { attempt: attempt - 1 }, { from: ['submitting'], attempt });
    if (error.code === 'PROVIDER_RATE_LIMITED') {
      // A 429 pauses the whole dispatch queue, on every worker, for as long as the provider asked,
      // and does not use up one of this job's attempts.
      const waitMs = error.retryAfterMs ?? deps.rateLimitFallbackMs;
      log.warn({ waitMs }, 'provider rate limit: pausing dispatch');
      await deps.worker().rateLimit(waitMs);
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
  log.error({ code: error.code, err: error.message, recorded: failed.ok }, 'submit failed permanently');
  return { failed: error.code };
}
