import type { BatchView } from '../batches/view.js';
import { type JobView, jobView } from '../contract/job-view.js';
import type { BatchCallbackEvent, JobCallbackEvent } from '../model/catalog.js';
import type { JobRecord } from '../model/record.js';

/** The envelope Standard Webhooks recommends: what happened, when, and the object it happened to. */
export interface CallbackEnvelope<TType extends string, TData> {
  type: TType;
  /** When the event happened (ISO-8601 UTC): the same on every retry of one message. */
  timestamp: string;
  data: TData;
}

export type JobCallbackBody = CallbackEnvelope<JobCallbackEvent, JobView>;

/** A job callback's body: `data` is exactly what `GET /v1/jobs/:id` returns. */
export function jobCallbackBody(record: JobRecord, event: JobCallbackEvent): JobCallbackBody {
  return { type: event, timestamp: record.finished_at ?? record.updated_at, data: jobView(record) };
}

export type BatchCallbackBody = CallbackEnvelope<BatchCallbackEvent, BatchView>;

/** A batch callback's body: `data` is exactly what `GET /v1/batches/:id` returns. */
export function batchCallbackBody(view: BatchView, event: BatchCallbackEvent): BatchCallbackBody {
  return { type: event, timestamp: view.finished_at ?? new Date().toISOString(), data: view };
}
