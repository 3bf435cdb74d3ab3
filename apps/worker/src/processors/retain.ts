import { isAppError } from '@recast/core/errors';
import { type RetainOptions, retainOutput } from '@recast/core/files';
import type { Logger } from '@recast/core/infra';
import { type JobStore, RetainPayloadSchema } from '@recast/core/model';
import { type BillingChecks, utcDay } from '@recast/core/money';
import type { Job } from 'bullmq';

export interface RetainDeps {
  store: JobStore;
  checks: BillingChecks;
  logger: Logger;
  retain: RetainOptions;
}

/**
 * `job.retain`: keep a completed job's output and check its real duration against the bill. It
 * runs after the job's money has settled and only writes facts about the output on the record
 * (never its state or cost), so a failure here can delay or lose the copy, never the job. A
 * failed try is reported on the job and retried; after the last one the job says `failed`.
 */
export function createRetainProcessor(deps: RetainDeps) {
  return async (job: Job) => {
    const { jobId, taskId } = RetainPayloadSchema.parse(job.data);
    const record = await deps.store.get(jobId);
    // A re-run (batch retry) moved the job on: this run's output is not the one to keep.
    if (record?.state !== 'completed' || record.task_id !== taskId) return { skipped: 'moved on' };
    if (record.output_retention === 'stored') return { skipped: 'stored already' };
    const log = deps.logger.child({ jobId, tenant: record.tenant, batchId: record.batch_id, taskId });
    const when = { state: 'completed' as const, taskId };
    const attempt = job.attemptsMade + 1;
    let last = attempt >= (job.opts.attempts ?? 1);
    try {
      if (!record.output_url || record.billed_ms === undefined) {
        throw new Error('the completed task has no output video URL');
      }
      const kept = await retainOutput(deps.retain, {
        id: jobId,
        outputUrl: record.output_url,
        billedSeconds: record.billed_ms / 1000,
      });
      const written = await deps.store.annotate(jobId, when, {
        output_retention: 'stored',
        output_bytes: kept.size,
        output_sha256: kept.sha256,
        output_stored_at: new Date().toISOString(),
        output_retention_attempts: attempt,
        output_retention_error: null,
        duration_check: JSON.stringify(kept.check),
      });
      if (written && kept.check.mismatch) {
        await deps.checks.recordMismatch({
          chargeId: record.reruns ? `${jobId}#rerun-${record.reruns}` : jobId,
          day: utcDay(new Date(record.finished_at ?? Date.now())),
          resolution: record.input.resolution,
          tenant: record.tenant,
          batch_id: record.batch_id,
        });
        log.warn({ check: kept.check }, 'billing mismatch: the output is not as long as the bill says');
      }
      log.info({ bytes: kept.size, probedSeconds: kept.check.probed_seconds, written }, 'output kept');
      return { stored: written, mismatch: kept.check.mismatch };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // Too large or not a video: the same bytes would come again. A refused URL is retried: the
      // allow-list is configuration an operator may fix within the retry window.
      if (isAppError(error) && (error.code === 'FILE_TOO_LARGE' || error.code === 'FILE_TYPE_UNSUPPORTED')) {
        last = true;
      }
      await deps.store.annotate(jobId, when, {
        output_retention: last ? 'failed' : 'pending',
        output_retention_error: message.slice(0, 500),
        output_retention_attempts: attempt,
      });
      if (last) {
        log.error({ err: message, attempt }, 'could not keep the output; giving up');
        return { stored: false };
      }
      log.warn({ err: message, attempt }, 'could not keep the output; will retry');
      throw error;
    }
  };
}
