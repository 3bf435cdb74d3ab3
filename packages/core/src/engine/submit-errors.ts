import type { Logger } from '../infra/logger.js';
import type { JobRecord } from '../model/record.js';
import { InferenceError, mayHaveReachedProvider } from '../provider/inference-error.js';
import { done, type EngineContext, type ProviderBinding, type StepOutcome } from './context.js';
import type { DispatchResult, DispatchStep } from './dispatch.js';
import { releaseUnbilled } from './terminal.js';

/**
 * A submit that did not come back with a task. What happens next depends on whether the provider
 * may have the task anyway:
 * - it may (a timeout, a dropped connection, a 5xx from a gateway, an unreadable 2xx): submitting
 *   again could be a second bill. The job stays `submitting` on this attempt, the claim is spent
 *   and the end of the POST written down; the step comes back (a retry, or a delay on its last
 *   try) and first looks for the task by its webhook URL, adopting it; it submits again only when
 *   the provider has none;
 * - it cannot (refused before sending, a 429, a 4xx): nothing was accepted. The slot is freed, the
 *   attempt number given back, and the job goes back in line (a 429 holds every worker);
 * - a permanent refusal fails the job and releases its money.
 */
export async function submitFailed(
  ctx: EngineContext,
  provider: ProviderBinding,
  step: DispatchStep,
  record: JobRecord,
  token: string,
  err: unknown,
  log: Logger,
): Promise<StepOutcome<DispatchResult>> {
  const error =
    err instanceof InferenceError
      ? err
      : new InferenceError('PROVIDER_UNAVAILABLE', {
          detail: (err as Error).message,
          retryable: true,
          cause: err,
        });
  const pauseMs =
    error.code === 'PROVIDER_RATE_LIMITED' ? (error.retryAfterMs ?? provider.dispatchBackoff.next()) : 0;
  await ctx.gate.submitted(token, pauseMs);
  const jobId = record.id;

  if (error.retryable && mayHaveReachedProvider(error)) {
    // The slot is freed; the resumed submit admits again.
    await ctx.gate.release(jobId);
    await ctx.store.claimSubmit(jobId, 'ended', record.attempt, step.dispatchId);
    log.warn(
      { err: error.message, code: error.code, lastTry: step.lastTry },
      'submit answer lost or failed; will look for the task before submitting again',
    );
    // On the last try, come back without using an attempt: the search decides, never a guess.
    if (step.lastTry)
      return { kind: 'delay', ms: provider.orphans.graceMs, reason: 'look for the task of a lost submit' };
    return { kind: 'retry', error };
  }
  if (error.retryable) {
    await ctx.gate.release(jobId);
    await ctx.store.transition(
      jobId,
      'queued',
      { attempt: record.attempt - 1, submit_claim: null, claimed_at: null },
      { from: ['submitting'], attempt: record.attempt },
    );
    if (pauseMs > 0) {
      // A 429 pauses every worker (the gate's pause, and this queue's BullMQ rate limit) for as
      // long as the provider asked, and does not use up one of this job's attempts.
      log.warn({ waitMs: pauseMs }, 'provider rate limit: pausing dispatch');
      return { kind: 'pause', ms: pauseMs, reason: 'provider 429 on submit' };
    }
    if (!step.lastTry) {
      log.warn({ err: error.message, code: error.code }, 'transient provider error; will retry');
      return { kind: 'retry', error };
    }
  }
  const failed = await ctx.store.transition(
    jobId,
    'failed',
    {
      error_code: error.code,
      error_message: error.message,
      finished_at: new Date().toISOString(),
      submit_claim: null,
    },
    { from: ['queued', 'submitting'] },
  );
  if (failed.ok) await releaseUnbilled(ctx, record);
  log.error({ code: error.code, err: error.message, recorded: failed.ok }, 'submit failed permanently');
  return done({ failed: error.code });
}
