import type { JobRecord } from '@recast/core/model';

/** One results row per manifest row, in row order. */
function result(job: JobRecord) {
  return {
    custom_id: job.custom_id ?? null,
    line: job.line ?? null,
    job_id: job.id,
    state: job.state,
    output_video_url: job.state === 'completed' ? (job.output_url ?? null) : null,
    seconds: job.billed_ms === undefined ? null : job.billed_ms / 1000,
    cost_micro_usd: job.cost_micro_usd ?? null,
    error: job.error_code ? `${job.error_code}: ${job.error_message ?? ''}` : null,
  };
}

const COLUMNS = [
  'custom_id',
  'line',
  'job_id',
  'state',
  'output_video_url',
  'seconds',
  'cost_micro_usd',
  'error',
] as const;

export function resultLine(job: JobRecord): string {
  return `${JSON.stringify(result(job))}\n`;
}

export function resultsCsvHeader(): string {
  return `${COLUMNS.join(',')}\r\n`;
}

/** RFC 4180 quoting: a field with a comma, quote or line break is quoted, quotes doubled. */
function cell(value: unknown): string {
  if (value === null || value === undefined) return '';
  const s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function resultsCsvRow(job: JobRecord): string {
  const r = result(job);
  return `${COLUMNS.map((c) => cell(r[c])).join(',')}\r\n`;
}
