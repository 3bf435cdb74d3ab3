import { microUsdToUsd } from '../pricing/price-table.js';
import type { JobRecord } from './record.js';

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
    attempt: job.attempt,
    provider: job.task_id ? { task_id: job.task_id, status: job.provider_status ?? null } : null,
    submitted_at: job.submitted_at ?? null,
    finished_at: job.finished_at ?? null,
    output:
      job.state === 'completed'
        ? {
            video_url: job.output_url ?? null,
            seconds: job.billed_ms === undefined ? null : job.billed_ms / 1000,
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
    error: job.error_code ? { code: job.error_code, message: job.error_message ?? '' } : null,
  };
}
export type JobView = ReturnType<typeof jobView>;
