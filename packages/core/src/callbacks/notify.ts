import { type ConnectionOptions, type DefaultJobOptions, type Job, type JobsOptions, Queue } from 'bullmq';
import { z } from 'zod';
import type { Keys } from '../infra/keys.js';
import { bullJobId } from '../jobs/catalog.js';
import type { JobRecord } from '../jobs/record.js';
import type { JobState } from '../jobs/states.js';

/**
 * The `notify` queue: one BullMQ job per callback message. It lives here rather than in
 * jobs/catalog.ts because batches will send callbacks through it too; the payload is a
 * discriminated union on `kind` so a `batch` member can join without touching the job one.
 */
export const NOTIFY_QUEUE = 'notify';
export const JOB_NOTIFY_NAME = 'job.notify';

export const JOB_CALLBACK_EVENTS = ['job.completed', 'job.failed', 'job.cancelled'] as const;
export type JobCallbackEvent = (typeof JOB_CALLBACK_EVENTS)[number];

export const JobNotifyPayloadSchema = z.object({
  kind: z.literal('job'),
  jobId: z.string(),
  event: z.enum(JOB_CALLBACK_EVENTS),
  /** The `webhook-id`: the same on every retry, so receivers can dedupe on it. */
  messageId: z.string(),
});
export const BATCH_NOTIFY_NAME = 'batch.notify';
export const BATCH_CALLBACK_EVENTS = [
  'batch.completed',
  'batch.completed_with_errors',
  'batch.cancelled',
] as const;
export type BatchCallbackEvent = (typeof BATCH_CALLBACK_EVENTS)[number];

export const BatchNotifyPayloadSchema = z.object({
  kind: z.literal('batch'),
  batchId: z.string(),
  event: z.enum(BATCH_CALLBACK_EVENTS),
  messageId: z.string(),
});
export const NotifyPayloadSchema = z.discriminatedUnion('kind', [
  JobNotifyPayloadSchema,
  BatchNotifyPayloadSchema,
]);
export type NotifyPayload = z.infer<typeof NotifyPayloadSchema>;

/**
 * 13 attempts: the first, then 12 retries after 15 s, 30 s, 1 min, ... 8.5 h (exponential, base
 * 15 s), so a receiver that is down gets until about 17 h after the event to come back. Jitter
 * only shortens a wait (BullMQ draws it from [delay × (1 − jitter), delay]), and spreads the
 * retries of a burst of callbacks when a receiver recovers. Retention as in jobs/catalog.ts;
 * failed callbacks stay a week so an operator can see them.
 */
export const NOTIFY_JOB_OPTIONS = {
  attempts: 13,
  backoff: { type: 'exponential', delay: 15_000, jitter: 0.2 },
  removeOnComplete: { age: 24 * 3600, count: 50_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
} as const satisfies DefaultJobOptions;

export type NotifyQueue = Queue<NotifyPayload>;

export function createNotifyQueue(connection: ConnectionOptions, keys: Keys): NotifyQueue {
  return new Queue<NotifyPayload>(NOTIFY_QUEUE, {
    connection,
    prefix: keys.bullPrefix,
    defaultJobOptions: NOTIFY_JOB_OPTIONS,
  });
}

/** The callback event for a terminal state, undefined for any other. */
export function jobCallbackEvent(state: JobState): JobCallbackEvent | undefined {
  switch (state) {
    case 'completed':
      return 'job.completed';
    case 'failed':
      return 'job.failed';
    case 'cancelled':
      return 'job.cancelled';
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
