import { z } from 'zod';
import { ReplaceInputSchema } from './schema.js';
import { JOB_STATES } from './states.js';

/** One move of a job: the state it entered, and when (ISO-8601 UTC). */
export const TimelineEntrySchema = z.object({ state: z.enum(JOB_STATES), at: z.string() });
export type TimelineEntry = z.infer<typeof TimelineEntrySchema>;

/**
 * Recast's own record of a job, kept in a Redis hash that outlives the BullMQ job. What users read.
 * Money in integer micro-dollars, durations in integer milliseconds, times ISO-8601 UTC.
 */
export const JobRecordSchema = z.object({
  id: z.string(),
  tenant: z.string(),
  state: z.enum(JOB_STATES),
  version: z.number().int(),
  /** Writes that did not move the state (annotate-1.lua): with the version, every write's count. */
  notes: z.number().int().optional(),
  created_at: z.string(),
  updated_at: z.string(),
  input: ReplaceInputSchema,
  duration_seconds: z.number().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  callback_url: z.string().optional(),
  idempotency_key: z.string().optional(),
  /** The batch the job belongs to, when it came from a manifest. */
  batch_id: z.string().optional(),
  /** The manifest row a batch job came from: its custom_id and 1-based line. */
  custom_id: z.string().optional(),
  line: z.number().int().optional(),
  /**
   * When the batch's completion_window closes (ISO-8601 UTC): a row still in line then ends
   * `expired` and is never sent (see batches/expire.ts).
   */
  expires_at: z.string().optional(),
  /** Times a finished job was run again (batch retry); each run is charged on its own. */
  reruns: z.number().int().optional(),
  /** What to do when a budget cannot cover the job: wait for money (park) or fail at once. */
  on_budget_exceeded: z.enum(['park', 'reject']).optional(),
  /** Expected output seconds, where that figure came from, and the cost it implies. */
  estimate_seconds: z.number().optional(),
  estimate_source: z.enum(['hint', 'probe', 'fallback']).optional(),
  estimate_micro_usd: z.number().int().optional(),
  estimate_probe_error: z.string().optional(),
  /** The amount held against the job's budgets, from reservation until settle. */
  reserved_micro_usd: z.number().int().optional(),
  /** While `waiting_budget`: the scope and window that had no room, e.g. `tenant:acme|daily`. */
  budget_blocked_by: z.string().optional(),
  parked_at: z.string().optional(),
  /** Provider-side task failures retried as new attempts, and how many are allowed. */
  max_provider_retries: z.number().int().optional(),
  provider_failures: z.number().int().optional(),
  /** Every billed attempt that did not end the job, in micro-dollars (a failed-then-retried task). */
  retried_cost_micro_usd: z.number().int().optional(),
  /**
   * The deadline of the job's task at the provider (JOB_TIMEOUT_SECONDS unless the job gave one),
   * when it falls (ms since the epoch, the Redis server's clock: set by transition-2.lua when the
   * task first waits on the provider, cleared when the job goes back in line for a new attempt),
   * and when it was passed (the task is then cancelled and the job fails with DEADLINE_EXCEEDED).
   */
  timeout_seconds: z.number().int().optional(),
  /**
   * When the task is overdue against its expected duration (ms, set at its submit: the processing
   * time per output second observed on completed tasks, times its seconds, times 1.5): the
   * reconciler polls it then (within RECONCILE_MIN_AFTER_MS .. RECONCILE_AFTER_MS of its last move).
   */
  overdue_ms: z.number().int().optional(),
  deadline_ms: z.number().int().optional(),
  deadline_exceeded_at: z.string().optional(),
  /** The provider task whose failure was retried last (so a retried settle can finish its charge). */
  failed_task_id: z.string().optional(),
  /**
   * The W3C traceparent of the trace the job's spans join (its submit's, or its first dispatch's),
   * kept only while this deployment traces: not a secret, and never shown in a view.
   */
  traceparent: z.string().optional(),
  /**
   * Every state the job entered, oldest first, written by the Lua step that made each move
   * (infra/lua/job-timeline.lua; kept in the hash as `state@at,state@at`).
   */
  timeline: z.array(TimelineEntrySchema).optional(),
  /** Submit attempts so far; the webhook URL of an attempt carries its number. */
  attempt: z.number().int(),
  /** The BullMQ dispatch job that claimed the current attempt: only it may resume the submit. */
  dispatch_id: z.string().optional(),
  /**
   * The submit claim (model/lua/claim-1.lua): set while that dispatch may send the attempt's one
   * task; revoked when a task is attached. When it was taken, and when a POST whose answer was
   * lost ended (a resumed dispatch searches for the task only once the provider has settled).
   */
  submit_claim: z.string().optional(),
  claimed_at: z.string().optional(),
  submit_ended_at: z.string().optional(),
  task_id: z.string().optional(),
  provider_status: z.string().optional(),
  submitted_at: z.string().optional(),
  finished_at: z.string().optional(),
  output_url: z.string().optional(),
  /** Second provider tasks that were billed, charged as `duplicate` ledger lines (comma-separated ids). */
  duplicate_task_ids: z.string().optional(),
  duplicate_cost_micro_usd: z.number().int().optional(),
  billed_ms: z.number().int().optional(),
  cost_micro_usd: z.number().int().optional(),
  price_version: z.string().optional(),
  error_code: z.string().optional(),
  error_message: z.string().optional(),
  /** Output retention (OUTPUT_STORE): pending until kept, or failed after the last try. */
  output_retention: z.enum(['pending', 'stored', 'failed']).optional(),
  output_bytes: z.number().int().optional(),
  output_sha256: z.string().optional(),
  output_stored_at: z.string().optional(),
  output_retention_error: z.string().optional(),
  output_retention_attempts: z.number().int().optional(),
  /** The kept output's real duration against the billed seconds. */
  duration_check: z
    .object({
      probed_seconds: z.number().nullable(),
      billed_seconds: z.number(),
      tolerance_seconds: z.number(),
      mismatch: z.boolean(),
      error: z.string().optional(),
    })
    .optional(),
});
export type JobRecord = z.infer<typeof JobRecordSchema>;

const JSON_FIELDS = new Set(['input', 'metadata', 'duration_check']);
const NUMBER_FIELDS = new Set([
  'version',
  'notes',
  'attempt',
  'duration_seconds',
  'billed_ms',
  'cost_micro_usd',
  'estimate_seconds',
  'estimate_micro_usd',
  'reserved_micro_usd',
  'max_provider_retries',
  'provider_failures',
  'retried_cost_micro_usd',
  'line',
  'reruns',
  'output_bytes',
  'output_retention_attempts',
  'duplicate_cost_micro_usd',
  'timeout_seconds',
  'deadline_ms',
  'overdue_ms',
]);

/** Hash fields are strings: JSON for objects, decimal for numbers; absent values are not written. */
export function encodeFields(fields: Partial<JobRecord>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (key === 'timeline') out[key] = encodeTimeline(value as TimelineEntry[]);
    else out[key] = JSON_FIELDS.has(key) ? JSON.stringify(value) : String(value);
  }
  return out;
}

function encodeTimeline(entries: TimelineEntry[]): string {
  return entries.map((entry) => `${entry.state}@${entry.at}`).join(',');
}

function decodeTimeline(value: string): { state: string; at: string }[] {
  return value.split(',').map((entry) => {
    const at = entry.indexOf('@');
    return { state: entry.slice(0, at), at: entry.slice(at + 1) };
  });
}

export function decodeRecord(hash: Record<string, string>): JobRecord {
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(hash)) {
    if (key === 'timeline') raw[key] = decodeTimeline(value);
    else if (JSON_FIELDS.has(key)) raw[key] = JSON.parse(value);
    else if (NUMBER_FIELDS.has(key)) raw[key] = Number(value);
    else raw[key] = value;
  }
  return JobRecordSchema.parse(raw);
}
