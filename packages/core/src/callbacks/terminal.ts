import type { BatchViewDeps } from '../batches/view.js';
import { loadBatchView } from '../batches/view.js';
import type { NotifyQueue } from '../model/catalog.js';
import type { JobRecord } from '../model/record.js';
import { enqueueBatchCallback, enqueueJobCallback } from './notify.js';

/**
 * A job reached a terminal state, here or in any other process: queue its own callback (when it
 * has a `callback_url`) and, when it was the last unfinished row of a batch with a `callback_url`,
 * the batch's one callback. Both are deduped by message, so every process that sees the job
 * finish may call this.
 */
export async function notifyFinished(
  deps: BatchViewDeps & { notify: NotifyQueue },
  record: JobRecord,
): Promise<void> {
  await enqueueJobCallback(deps.notify, record);
  if (!record.batch_id) return;
  const view = await loadBatchView(deps, record.batch_id);
  if (view) await enqueueBatchCallback(deps.notify, view);
}
