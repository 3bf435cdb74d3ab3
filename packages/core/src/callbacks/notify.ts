import type { Job, JobsOptions } from 'bullmq';
import {
  BATCH_NOTIFY_NAME,
  type BatchCallbackEvent,
  bullJobId,
  JOB_NOTIFY_NAME,
  type JobCallbackEvent,
  type NotifyPayload,
  type NotifyQueue,
} from '../model/catalog.js';
import type { JobRecord } from '../model/record.js';
import type { JobState } from '../model/states.js';

/** The callback event for a terminal state, undefined for any other. */
export function jobCallbackEvent(state: JobState): JobCallbackEvent | undefined {
  switch (state) {
    case 'completed':
      return 'job.completed';
    case 'failed':
      return 'job.failed';
    case 'cancelled':
      return 'job.cancelled';
    case 'expired':
      return 'job.expired';
    default:
      return undefined;
  }
}

/** Stable per job and terminal state: a job reaches one terminal state, so it gets one message. */
export function jobCallbackMessageId(jobId: string, state: JobState): string {
  return `msg_${jobId}_${state}`;
}

/**
 * Queue the callback for a job that reached a terminal state. A no-op (undefined) without a
 * `callback_url` or before a terminal state. Safe to call more than once, from any process: the
 * BullMQ job id `notify-<jobId>-<state>` makes later calls add nothing while the first is kept
 * (a day after delivery, a week after giving up). `options` override the defaults; for tests.
 */
export async function enqueueJobCallback(
  queue: NotifyQueue,
  record: JobRecord,
  options: Omit<JobsOptions, 'jobId'> = {},
): Promise<Job<NotifyPayload> | undefined> {
  if (!record.callback_url) return undefined;
  const event = jobCallbackEvent(record.state);
  if (!event) return undefined;
  const payload: NotifyPayload = {
    kind: 'job',
    jobId: record.id,
    event,
    messageId: jobCallbackMessageId(record.id, record.state),
  };
  return queue.add(JOB_NOTIFY_NAME, payload, {
    ...options,
    jobId: bullJobId('notify', record.id, record.state),
  });
}

/** The callback event of a finished batch's status, undefined while it is not finished. */
export function batchCallbackEvent(status: string): BatchCallbackEvent | undefined {
  switch (status) {
    case 'completed':
      return 'batch.completed';
    case 'completed_with_errors':
      return 'batch.completed_with_errors';
    case 'cancelled':
      return 'batch.cancelled';
    case 'expired':
      return 'batch.expired';
    default:
      return undefined;
  }
}

/**
 * Queue the one callback of a batch that has finished: a no-op without a `callback_url` or while
 * rows are still running. Safe to call from every process that moved one of its jobs to a terminal
 * state: the id carries the moment the batch finished, so it is sent once per finish (a batch that
 * is retried and finishes again gets a new message).
 */
export async function enqueueBatchCallback(
  queue: NotifyQueue,
  batch: { id: string; status: string; callback_url: string | null; finished_at: string | null },
  options: Omit<JobsOptions, 'jobId'> = {},
): Promise<Job<NotifyPayload> | undefined> {
  const event = batchCallbackEvent(batch.status);
  if (!batch.callback_url || !event || !batch.finished_at) return undefined;
  const finished = String(Date.parse(batch.finished_at));
  const payload: NotifyPayload = {
    kind: 'batch',
    batchId: batch.id,
    event,
    messageId: `msg_${batch.id}_finished_${finished}`,
  };
  return queue.add(BATCH_NOTIFY_NAME, payload, {
    ...options,
    jobId: bullJobId('notify', batch.id, 'finished', finished),
  });
}
