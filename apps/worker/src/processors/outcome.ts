import type { StepOutcome } from '@recast/core/engine';
import { DelayedError, type Job, Worker } from 'bullmq';

/**
 * Carry out an engine step's outcome the BullMQ way: `done` completes the job with its result;
 * `pause` holds the whole queue on every worker (a manual rate limit: BullMQ honours it on every
 * worker of the queue because they all set a limiter) and puts the job back unharmed; `retry`
 * fails this try (backoff, attempts); `delay` puts the job back for a while without using an attempt.
 */
export async function carryOut<T>(
  outcome: StepOutcome<T>,
  job: Job,
  token: string | undefined,
  worker: () => Worker,
): Promise<T> {
  switch (outcome.kind) {
    case 'done':
      return outcome.result;
    case 'pause':
      await worker().rateLimit(outcome.ms);
      throw Worker.RateLimitError();
    case 'retry':
      throw outcome.error;
    case 'delay':
      await job.moveToDelayed(Date.now() + outcome.ms, token);
      throw new DelayedError(outcome.reason);
  }
}

/** Whether this try is the job's last one (its attempts are used up after it). */
export function lastTry(job: Job): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}
