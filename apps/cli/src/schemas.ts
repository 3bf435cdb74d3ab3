import type { Batch } from '@recast/client';

// The API's answers are typed by @recast/client (generated from the API's OpenAPI document); this
// file keeps only what the CLI derives from them.
export type {
  ApiKey,
  ApiKeyCreated,
  Batch,
  BatchAccepted,
  BatchCancelled,
  BatchQuote,
  BatchRetried,
  Limits,
  UploadedFile,
} from '@recast/client';

/** A manifest row's error, as a batch's answer and the preflight list them. */
export interface RowError {
  line: number;
  custom_id: string | null;
  path: string;
  message: string;
}

/** Batch statuses, from the API's contract (one list for the server, the CLI and the dashboard). */
export { BATCH_STATUSES, FINISHED_BATCH_STATUSES as FINISHED_STATUSES } from '@recast/core/contract';

/** How many rows are over: the progress bar's value. */
export function doneOf(batch: Batch): number {
  const c = batch.counts;
  return (c.completed ?? 0) + (c.failed ?? 0) + (c.cancelled ?? 0) + (c.expired ?? 0);
}
