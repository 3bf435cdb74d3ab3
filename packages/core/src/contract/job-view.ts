import type { JobRecord } from '../model/record.js';
import { TERMINAL_STATES as TERMINAL } from '../model/states.js';
import { microUsdToUsd } from '../money/price-table.js';

/** The public representation of a job (what `GET /v1/jobs/:id` returns). */
export function jobView(job: JobRecord) {
  return {
    id: job.id,
    object: 'job' as const,
    tenant: job.tenant,
    state: job.state,
    created_at: job.created_at,
    updated_at: job.updated_at,
    input: job.input,
    duration_seconds: job.duration_seconds ?? null,
    metadata: job.metadata ?? null,
    batch_id: job.batch_id ?? null,
    custom_id: job.custom_id ?? null,
    line: job.line ?? null,
    attempt: job.attempt,
    provider: job.task_id ? { task_id: job.task_id, status: job.provider_status ?? null } : null,
    submitted_at: job.submitted_at ?? null,
    finished_at: job.finished_at ?? null,
    output:
      job.state === 'completed'
        ? {
            /** The provider's link: it may not live forever. */
            video_url: job.output_url ?? null,
            seconds: job.billed_ms === undefined ? null : job.billed_ms / 1000,
            /** Recast's own copy (OUTPUT_STORE), relative to the API's base URL, once kept. */
            recast_url: job.output_retention === 'stored' ? `/v1/jobs/${job.id}/output` : null,
            retention: job.output_retention
              ? {
                  status: job.output_retention,
                  bytes: job.output_bytes ?? null,
                  sha256: job.output_sha256 ?? null,
                  stored_at: job.output_stored_at ?? null,
                  attempts: job.output_retention_attempts ?? 0,
                  error: job.output_retention_error ?? null,
                }
              : null,
            /** The kept file's real duration against the billed seconds (a billing check). */
            duration_check: job.duration_check ?? null,
          }
        : null,
    cost:
      job.cost_micro_usd === undefined
        ? null
        : {
            resolution: job.input.resolution,
            seconds: (job.billed_ms ?? 0) / 1000,
            micro_usd: job.cost_micro_usd,
            usd: microUsdToUsd(job.cost_micro_usd),
            price_version: job.price_version ?? null,
          },
    /** Second provider tasks of this job that the provider billed too, each a `duplicate` charge. */
    duplicates:
      job.duplicate_task_ids === undefined
        ? null
        : {
            task_ids: job.duplicate_task_ids.split(','),
            micro_usd: job.duplicate_cost_micro_usd ?? 0,
            usd: microUsdToUsd(job.duplicate_cost_micro_usd ?? 0),
          },
    estimate:
      job.estimate_seconds === undefined
        ? null
        : {
            seconds: job.estimate_seconds,
            source: job.estimate_source ?? null,
            micro_usd: job.estimate_micro_usd ?? null,
            usd: job.estimate_micro_usd === undefined ? null : microUsdToUsd(job.estimate_micro_usd),
            probe_error: job.estimate_probe_error ?? null,
          },
    budget: {
      /** Held against the job's budgets from dispatch until it settles. */
      reserved_micro_usd:
        job.reserved_micro_usd !== undefined && !TERMINAL.has(job.state) ? job.reserved_micro_usd : null,
      /** While waiting_budget: the scope and window with no room, e.g. `tenant:acme|daily`. */
      blocked_by: job.state === 'waiting_budget' ? (job.budget_blocked_by ?? null) : null,
      on_exceeded: job.on_budget_exceeded ?? 'park',
    },
    /** The task's deadline at the provider: past it, the task is cancelled and the job fails. */
    deadline: {
      timeout_seconds: job.timeout_seconds ?? null,
      at: job.deadline_ms === undefined ? null : new Date(job.deadline_ms).toISOString(),
      exceeded_at: job.deadline_exceeded_at ?? null,
    },
    error: job.error_code ? { code: job.error_code, message: job.error_message ?? '' } : null,
  };
}
export type JobView = ReturnType<typeof jobView>;
