import type { Logger } from '@recast/core/infra';
import type { JobRecord } from '@recast/core/model';
import { enqueueSettle } from '@recast/core/model';
import type { InferenceClient, Task } from '@recast/core/provider';
import { isTerminalStatus } from '@recast/core/provider';
import type { WorkerContext } from './context.js';

export interface OrphanSearch {
  /** Pages of the provider's task list to read at most (newest first). */
  maxPages: number;
  pageSize: number;
}

/** Does this task's webhook URL name this job and attempt? (See webhookUrl in core.) */
function belongsTo(task: Task, jobId: string, attempt: number): boolean {
  if (!task.webhook) return false;
  try {
    const url = new URL(task.webhook);
    return (
      url.pathname.endsWith(`/webhooks/inference/${jobId}`) &&
      url.searchParams.get('attempt') === String(attempt)
    );
  } catch {
    return false;
  }
}

/**
 * Look for a task the provider accepted for this job's current attempt although we never wrote its
 * id down (the worker died between POST /apps/run and recording the answer). The webhook URL is
 * the only thing we sent that names the job and the attempt, so that is what is matched. The list
 * is newest first; the search stops at tasks created well before the attempt was claimed.
 */
export async function findOrphan(
  client: InferenceClient,
  record: JobRecord,
  search: OrphanSearch,
): Promise<Task | undefined> {
  const claimedAt = Date.parse(record.updated_at);
  const oldestWorthReading = claimedAt - 5 * 60_000;
  let cursor: string | undefined;
  for (let page = 0; page < search.maxPages; page++) {
    const list = await client.list({ limit: search.pageSize, ...(cursor ? { cursor } : {}) });
    for (const task of list.items) if (belongsTo(task, record.id, record.attempt)) return task;
    const last = list.items.at(-1);
    const lastCreated = last?.createdAt ? Date.parse(last.createdAt) : Number.NaN;
    if (!list.nextCursor || lastCreated < oldestWorthReading) return undefined;
    cursor = list.nextCursor;
  }
  return undefined;
}

/** Record an orphan as the job's task, then let settle read its real state. */
export async function adoptOrphan(
  deps: Pick<WorkerContext, 'store' | 'queues' | 'client'>,
  record: JobRecord,
  task: Task,
  log: Logger,
): Promise<void> {
  const fields = {
    task_id: task.id,
    provider_status: task.status,
    submitted_at: task.createdAt ?? new Date().toISOString(),
  };
  if (record.state === 'cancelling') {
    await deps.store.transition(record.id, 'cancelling', fields, {
      from: ['cancelling'],
      attempt: record.attempt,
    });
    if (!isTerminalStatus(task.status)) await deps.client.cancel(task.id);
  } else {
    await deps.store.transition(record.id, 'submitted', fields, {
      from: ['submitting'],
      attempt: record.attempt,
    });
  }
  log.warn({ taskId: task.id, attempt: record.attempt, status: task.status }, 'adopted an orphan task');
  await enqueueSettle(deps.queues, { jobId: record.id, taskId: task.id, statusHint: 'adopted', recheck: 0 });
}
