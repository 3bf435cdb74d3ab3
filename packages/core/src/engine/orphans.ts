import type { Logger } from '../infra/logger.js';
import { enqueueSettle } from '../model/catalog.js';
import type { JobRecord } from '../model/record.js';
import type { InferenceClient } from '../provider/inference-client.js';
import { InferenceError } from '../provider/inference-error.js';
import { isTerminalStatus } from '../provider/status.js';
import type { Task, TaskList } from '../provider/task.js';
import { belongsTo, webhookUrl } from '../provider/webhook-token.js';
import type { EngineContext, OrphanSearchOptions } from './context.js';
import { overdueAt } from './overdue.js';

/**
 * When an orphan search of the job's current attempt may conclude: a POST whose answer was lost
 * has ended (`submit_ended_at`), and the provider gets a grace to finish creating its task; a
 * dispatch that died left no end, so its POST may still land until the request timeout passes.
 */
export function orphanSearchFrom(record: JobRecord, requestTimeoutMs: number, graceMs: number): number {
  if (record.submit_ended_at) return Date.parse(record.submit_ended_at) + graceMs;
  const claimed = Date.parse(record.claimed_at ?? record.updated_at);
  return claimed + requestTimeoutMs + graceMs;
}

/**
 * Look for the task the provider accepted for this job's current attempt although we never wrote
 * its id down (a worker died between POST /apps/run and recording the answer, or the answer was
 * lost). The webhook URL is the only thing we sent that names the job and the attempt, so that is
 * what is matched.
 * - First ask the provider to filter its list by that URL: one call, however many tasks the
 *   account holds (other clients, a busy deployment).
 * - A provider that ignores or refuses the filter gets the list read page by page, newest first,
 *   until it is older than the attempt's claim, however many pages that is: bounded by time, not
 *   by a page count. A scan cut short by its deadline throws (retryable): an unfinished search is
 *   never taken for "the provider has no task", which would submit, and pay, twice.
 */
export async function findOrphan(
  client: InferenceClient,
  record: JobRecord,
  search: OrphanSearchOptions & { publicUrl: string; webhookSecret: string },
): Promise<Task | undefined> {
  const url = webhookUrl(search.publicUrl, search.webhookSecret, record.id, record.attempt);
  const mine = (list: TaskList) => list.items.filter((t) => belongsTo(t, record.id, record.attempt));
  try {
    const filtered = await client.list({
      limit: search.pageSize,
      filters: [{ field: 'webhook', operator: 'eq', value: url }],
    });
    const found = mine(filtered);
    // Every item matching means the filter was honoured: what it found (or that there is none) is the answer.
    if (found.length === filtered.items.length) return oldest(found);
  } catch (err) {
    // A provider that refuses the filter (400) is scanned instead; anything else is a real failure.
    if (!(err instanceof InferenceError) || err.httpStatus !== 400) throw err;
  }
  return scan(client, record, search, mine);
}

async function scan(
  client: InferenceClient,
  record: JobRecord,
  search: OrphanSearchOptions,
  mine: (list: TaskList) => Task[],
): Promise<Task | undefined> {
  const claimedAt = Date.parse(record.claimed_at ?? record.updated_at);
  // Clocks differ: tasks created a little before our claim (by the provider's clock) are read too.
  const oldestWorthReading = claimedAt - 5 * 60_000;
  const deadline = Date.now() + search.timeoutMs;
  let cursor: string | undefined;
  for (let pages = 1; ; pages++) {
    const list = await client.list({ limit: search.pageSize, ...(cursor ? { cursor } : {}) });
    const found = mine(list);
    if (found.length > 0) return oldest(found);
    const last = list.items.at(-1);
    const lastCreated = last?.createdAt ? Date.parse(last.createdAt) : Number.NaN;
    if (!list.nextCursor || lastCreated < oldestWorthReading) return undefined;
    if (Date.now() > deadline) {
      throw new InferenceError('PROVIDER_UNAVAILABLE', {
        detail: `orphan search of ${record.id} attempt ${record.attempt} read ${pages} pages without reaching the claim; retrying`,
        retryable: true,
      });
    }
    cursor = list.nextCursor;
  }
}

/** Of several tasks for one attempt (a duplicate got through), the first is the attempt's. */
function oldest(tasks: Task[]): Task | undefined {
  return [...tasks].sort((a, b) => Date.parse(a.createdAt ?? '') - Date.parse(b.createdAt ?? ''))[0];
}

/** Record an orphan as the job's task (the claim is spent), then let settle read its real state. */
export async function adoptOrphan(
  ctx: Pick<EngineContext, 'store' | 'queues' | 'processing'> & { client: InferenceClient },
  record: JobRecord,
  task: Task,
  log: Logger,
): Promise<void> {
  const submittedAt = task.createdAt ?? new Date().toISOString();
  const overdue = await overdueAt(ctx, record, Date.parse(submittedAt) || Date.now());
  const fields = {
    task_id: task.id,
    provider_status: task.status,
    submitted_at: submittedAt,
    submit_claim: null,
    ...(overdue !== undefined ? { overdue_ms: overdue } : {}),
  };
  const guard = { attempt: record.attempt, task: task.id };
  if (record.state === 'cancelling') {
    await ctx.store.transition(record.id, 'cancelling', fields, { from: ['cancelling'], ...guard });
    if (!isTerminalStatus(task.status)) await ctx.client.cancel(task.id);
  } else {
    await ctx.store.transition(record.id, 'submitted', fields, { from: ['submitting'], ...guard });
  }
  log.warn({ taskId: task.id, attempt: record.attempt, status: task.status }, 'adopted an orphan task');
  await enqueueSettle(ctx.queues, { jobId: record.id, taskId: task.id, statusHint: 'adopted', recheck: 0 });
}
