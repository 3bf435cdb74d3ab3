import type { JobRecord } from '../jobs/record.js';
import { type JobView, jobView } from '../jobs/view.js';
import type { JobCallbackEvent } from './notify.js';

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
