import type { Logger } from '@recast/core/infra';
import { InferenceError, type RateLimitBackoff } from '@recast/core/provider';
import { type Job, Worker } from 'bullmq';

/**
 * The settle queue carries provider updates (`job.settle`) and cancel requests (`job.cancel`).
 * A 429 from the provider pauses the whole queue, on every worker, for as long as the provider
 * asked, and puts the step back without using up one of its attempts (as dispatch does).
 */
export function settleOrCancel(
  settle: (job: Job) => Promise<unknown>,
  cancel: (job: Job) => Promise<unknown>,
  pause: { worker: () => Worker; backoff: RateLimitBackoff; logger: Logger },
) {
  return async (job: Job) => {
    try {
      const done = await (job.name === 'job.cancel' ? cancel(job) : settle(job));
      pause.backoff.reset();
      return done;
    } catch (err) {
      if (!(err instanceof InferenceError) || err.code !== 'PROVIDER_RATE_LIMITED') throw err;
      const waitMs = err.retryAfterMs ?? pause.backoff.next();
      pause.logger.warn(
        { waitMs, step: job.name, jobId: job.data?.jobId },
        'provider rate limit: pausing settle',
      );
      await pause.worker().rateLimit(waitMs);
      throw Worker.RateLimitError();
    }
  };
}
