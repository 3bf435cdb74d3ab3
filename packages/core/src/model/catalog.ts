import { type ConnectionOptions, type DefaultJobOptions, Queue } from 'bullmq';
import { z } from 'zod';
import type { Keys } from '../infra/keys.js';
import { queueTelemetry } from '../telemetry/tracing.js';

/**
 * The one job catalog: every BullMQ job Recast enqueues, with its queue, payload schema and
 * default options. Producers and processors both read it, so they cannot drift apart.
 * A dispatch's BullMQ job id is the Recast job id and the fair-share pick that sent it, so one pick
 * is enqueued at most once; the job record's compare-and-set makes extra picks harmless.
 */
export const DispatchPayloadSchema = z.object({ jobId: z.string() });
export type DispatchPayload = z.infer<typeof DispatchPayloadSchema>;

export const SettlePayloadSchema = z.object({
  jobId: z.string(),
  taskId: z.string(),
  /** What the webhook claimed; a hint only: settle confirms with GET /tasks/:id. */
  statusHint: z.string().optional(),
  /**
   * The attempt the webhook URL named (webhooks only): an earlier attempt's late or duplicated
   * webhook must not act on the current one.
   */
  attempt: z.number().int().positive().optional(),
  /** How many times a settle found the task not yet terminal and re-checked. */
  recheck: z.number().int().nonnegative().default(0),
});
export type SettlePayload = z.infer<typeof SettlePayloadSchema>;

export const CancelPayloadSchema = z.object({ jobId: z.string() });
export type CancelPayload = z.infer<typeof CancelPayloadSchema>;

/**
 * Watch an attempt whose POST may still land at the provider (its answer was lost, or its
 * dispatch died, and the job went on to a next attempt): look for its task until `until` (ms),
 * and stop it if it appears, so a late task of an abandoned attempt is not paid for.
 */
export const WatchPayloadSchema = z.object({
  jobId: z.string(),
  attempt: z.number().int().positive(),
  until: z.number().int(),
});
export type WatchPayload = z.infer<typeof WatchPayloadSchema>;

/** Keep a completed job's output (OUTPUT_STORE): the run is named by its task, so a re-run is not confused. */
export const RetainPayloadSchema = z.object({ jobId: z.string(), taskId: z.string() });
export type RetainPayload = z.infer<typeof RetainPayloadSchema>;

const retention: Pick<DefaultJobOptions, 'removeOnComplete' | 'removeOnFail'> = {
  // BullMQ is the delivery mechanism, not the record: keep finished jobs a day, failed a week.
  removeOnComplete: { age: 24 * 3600, count: 50_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

/**
 * The `notify` queue: one BullMQ job per callback message (callbacks/ enqueues and sends them).
 * The payload is a discriminated union on `kind`: a job's callback, or a batch's.
 */
export const NOTIFY_QUEUE = 'notify';
export const JOB_NOTIFY_NAME = 'job.notify';

export const JOB_CALLBACK_EVENTS = ['job.completed', 'job.failed', 'job.cancelled', 'job.expired'] as const;
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
  'batch.expired',
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
 * retries of a burst of callbacks when a receiver recovers. Retention as above;
 * failed callbacks stay a week so an operator can see them.
 */
export const NOTIFY_JOB_OPTIONS = {
  attempts: 13,
  backoff: { type: 'exponential', delay: 15_000, jitter: 0.2 },
  removeOnComplete: { age: 24 * 3600, count: 50_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
} as const satisfies DefaultJobOptions;

export type NotifyQueue = Queue<NotifyPayload>;

/**
 * BullMQ's per-queue event stream (what QueueEvents listeners read; Recast runs none) is capped at
 * this many entries instead of BullMQ's 10,000: a fixed ~60 KB per queue rather than ~600 KB.
 */
const EVENT_STREAM = { events: { maxLen: 1_000 } };

/** The notify queue alone (a process that only sends or counts callbacks). */
export function createNotifyQueue(connection: ConnectionOptions, keys: Keys): NotifyQueue {
  return new Queue<NotifyPayload>(NOTIFY_QUEUE, {
    ...queueTelemetry(),
    connection,
    prefix: keys.bullPrefix,
    streams: EVENT_STREAM,
    defaultJobOptions: NOTIFY_JOB_OPTIONS,
  });
}

/**
 * The `maintenance` queue: one job scheduler (`reconcile`) makes one reconcile pass per
 * RECONCILE_INTERVAL_MS across all worker processes.
 */
export const MAINTENANCE_QUEUE = 'maintenance';
export const RECONCILE_SCHEDULER = 'reconcile';
/** The audit of the books against the provider (AUDIT_INTERVAL_MS), on the maintenance queue. */
export const AUDIT_SCHEDULER = 'audit';
export const MAINTENANCE_JOB_OPTIONS = {
  removeOnComplete: 100,
  removeOnFail: 100,
} as const satisfies DefaultJobOptions;

export const JOB_CATALOG = {
  'job.dispatch': {
    queue: 'dispatch',
    schema: DispatchPayloadSchema,
    options: {
      ...retention,
      attempts: 8,
      backoff: { type: 'exponential', delay: 2_000, jitter: 0.5 },
    } satisfies DefaultJobOptions,
  },
  'job.settle': {
    queue: 'settle',
    schema: SettlePayloadSchema,
    options: {
      ...retention,
      attempts: 10,
      backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 },
    } satisfies DefaultJobOptions,
  },
  /** Ask the provider to cancel a job's task (the API only moved the job to `cancelling`). */
  'job.cancel': {
    queue: 'settle',
    schema: CancelPayloadSchema,
    options: {
      ...retention,
      attempts: 10,
      backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 },
    } satisfies DefaultJobOptions,
  },
  /** Look for a late task of an abandoned attempt (see WatchPayloadSchema); on the settle queue. */
  'job.watch': {
    queue: 'settle',
    schema: WatchPayloadSchema,
    options: {
      ...retention,
      attempts: 10,
      backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 },
    } satisfies DefaultJobOptions,
  },
  /**
   * Download, measure and keep a completed job's output, after its money has settled. Its own
   * queue, so slow downloads never hold up settling; 5 tries over about half a minute by default
   * (the worker sets `attempts` from OUTPUT_DOWNLOAD_ATTEMPTS).
   */
  'job.retain': {
    queue: 'retain',
    schema: RetainPayloadSchema,
    options: {
      ...retention,
      attempts: 5,
      backoff: { type: 'exponential', delay: 2_000, jitter: 0.5 },
    } satisfies DefaultJobOptions,
  },
} as const;

export type JobName = keyof typeof JOB_CATALOG;
/** The queues of job steps (the notify and maintenance queues are listed apart: see above). */
export const QUEUE_NAMES = ['dispatch', 'settle', 'retain'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

/** BullMQ custom ids may not contain ':'; Recast ids never do, provider ids are sanitized. */
export function bullJobId(...parts: string[]): string {
  return parts.map((p) => p.replace(/[^A-Za-z0-9_.-]/g, '_')).join('-');
}

export interface Queues {
  dispatch: Queue<DispatchPayload>;
  settle: Queue<SettlePayload | CancelPayload | WatchPayload>;
  retain: Queue<RetainPayload>;
  notify: NotifyQueue;
  maintenance: Queue;
  close(): Promise<void>;
}

export interface QueueOptions {
  /**
   * Finished steps are kept no longer than this (REDIS_JOB_RETENTION_MS): with history in
   * PostgreSQL, what BullMQ keeps of a job is only its delivery record. Default one day.
   */
  completedRetentionSeconds?: number;
}

/** A job's default options, with the completed steps kept as long as the deployment says. */
function withRetention(options: DefaultJobOptions, queue: QueueOptions): DefaultJobOptions {
  const seconds = queue.completedRetentionSeconds;
  if (seconds === undefined) return options;
  return { ...options, removeOnComplete: { age: Math.max(1, Math.floor(seconds)), count: 50_000 } };
}

/** Producer-side queues sharing one connection (fail-fast: see infra/redis.ts). */
export function createQueues(connection: ConnectionOptions, keys: Keys, options: QueueOptions = {}): Queues {
  const dispatch = new Queue<DispatchPayload>('dispatch', {
    ...queueTelemetry(),
    connection,
    prefix: keys.bullPrefix,
    streams: EVENT_STREAM,
    defaultJobOptions: withRetention(JOB_CATALOG['job.dispatch'].options, options),
  });
  const settle = new Queue<SettlePayload | CancelPayload | WatchPayload>('settle', {
    ...queueTelemetry(),
    connection,
    prefix: keys.bullPrefix,
    streams: EVENT_STREAM,
    defaultJobOptions: withRetention(JOB_CATALOG['job.settle'].options, options),
  });
  const retain = new Queue<RetainPayload>('retain', {
    ...queueTelemetry(),
    connection,
    prefix: keys.bullPrefix,
    streams: EVENT_STREAM,
    defaultJobOptions: withRetention(JOB_CATALOG['job.retain'].options, options),
  });
  const notify = createNotifyQueue(connection, keys);
  // Every step of the settle queue (settle, cancel, watch) has the same attempts and backoff: the
  // queue's defaults (with the deployment's retention) serve them all.
  const maintenance = new Queue(MAINTENANCE_QUEUE, {
    connection,
    prefix: keys.bullPrefix,
    streams: EVENT_STREAM,
    defaultJobOptions: MAINTENANCE_JOB_OPTIONS,
  });
  return {
    dispatch,
    settle,
    retain,
    notify,
    maintenance,
    async close() {
      await Promise.all([
        dispatch.close(),
        settle.close(),
        retain.close(),
        notify.close(),
        maintenance.close(),
      ]);
    },
  };
}

/** One retain per run (job and task): a settle that is retried enqueues nothing new. */
export function enqueueRetain(queues: Queues, payload: RetainPayload, options: { attempts?: number } = {}) {
  return queues.retain.add('job.retain', payload, {
    jobId: bullJobId('retain', payload.jobId, payload.taskId),
    ...(options.attempts ? { attempts: options.attempts } : {}),
  });
}

export async function enqueueSettle(
  queues: Queues,
  payload: SettlePayload,
  options: { delay?: number } = {},
) {
  // One settle per (job, task, status hint, recheck): a storm of duplicate webhooks is one settle.
  const id = bullJobId(
    'settle',
    payload.jobId,
    payload.taskId,
    payload.statusHint ?? 'poll',
    String(payload.recheck),
  );
  const job = await queues.settle.add('job.settle', payload, {
    jobId: id,
    ...(options.delay ? { delay: options.delay } : {}),
  });
  // A settle that used up its attempts (a long provider outage) is kept as failed under its id, so
  // adding the same update again would do nothing, and reconciliation's polls of that task would
  // never settle it. The same update arriving again gives it a fresh set of attempts instead.
  if (await job.isFailed()) {
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true }).catch(() => {});
  }
  return job;
}

export function enqueueCancel(queues: Queues, jobId: string) {
  return queues.settle.add('job.cancel', { jobId }, { jobId: bullJobId('cancel', jobId) });
}

/** One watch per (job, attempt): scheduling it again while it runs adds nothing. */
export function enqueueWatch(queues: Queues, payload: WatchPayload, delayMs: number) {
  return queues.settle.add('job.watch', payload, {
    jobId: bullJobId('watch', payload.jobId, String(payload.attempt)),
    delay: Math.max(0, delayMs),
  });
}
