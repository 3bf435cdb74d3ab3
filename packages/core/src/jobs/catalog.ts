import { type ConnectionOptions, type DefaultJobOptions, Job, Queue } from 'bullmq';
import type { ChainableCommander } from 'ioredis';
import { z } from 'zod';
import { AppError } from '../errors/app-error.js';
import type { Keys } from '../infra/keys.js';
import type { JobStore } from './job-store.js';
import type { JobRecord } from './record.js';

/**
 * The one job catalog: every BullMQ job Recast enqueues, with its queue, payload schema and
 * default options. Producers and processors both read it, so they cannot drift apart.
 * The BullMQ job id of a dispatch is the Recast job id, so a job can be enqueued at most once.
 */
export const DispatchPayloadSchema = z.object({ jobId: z.string() });
export type DispatchPayload = z.infer<typeof DispatchPayloadSchema>;

export const SettlePayloadSchema = z.object({
  jobId: z.string(),
  taskId: z.string(),
  /** What the webhook claimed; a hint only: settle confirms with GET /tasks/:id. */
  statusHint: z.string().optional(),
  /** How many times a settle found the task not yet terminal and re-checked. */
  recheck: z.number().int().nonnegative().default(0),
});
export type SettlePayload = z.infer<typeof SettlePayloadSchema>;

const retention: Pick<DefaultJobOptions, 'removeOnComplete' | 'removeOnFail'> = {
  // BullMQ is the delivery mechanism, not the record: keep finished jobs a day, failed a week.
  removeOnComplete: { age: 24 * 3600, count: 50_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

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
} as const;

export type JobName = keyof typeof JOB_CATALOG;
export const QUEUE_NAMES = ['dispatch', 'settle'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

/** BullMQ custom ids may not contain ':'; Recast ids never do, provider ids are sanitized. */
export function bullJobId(...parts: string[]): string {
  return parts.map((p) => p.replace(/[^A-Za-z0-9_.-]/g, '_')).join('-');
}

export interface Queues {
  dispatch: Queue<DispatchPayload>;
  settle: Queue<SettlePayload>;
  close(): Promise<void>;
}

/** Producer-side queues sharing one connection (fail-fast: see infra/redis.ts). */
export function createQueues(connection: ConnectionOptions, keys: Keys): Queues {
  const dispatch = new Queue<DispatchPayload>('dispatch', {
    connection,
    prefix: keys.bullPrefix,
    defaultJobOptions: JOB_CATALOG['job.dispatch'].options,
  });
  const settle = new Queue<SettlePayload>('settle', {
    connection,
    prefix: keys.bullPrefix,
    defaultJobOptions: JOB_CATALOG['job.settle'].options,
  });
  return {
    dispatch,
    settle,
    async close() {
      await Promise.all([dispatch.close(), settle.close()]);
    },
  };
}

export function enqueueDispatch(queues: Queues, jobId: string) {
  return queues.dispatch.add('job.dispatch', { jobId }, { jobId: bullJobId(jobId) });
}

export function enqueueSettle(queues: Queues, payload: SettlePayload, options: { delay?: number } = {}) {
  // One settle per (job, task, status hint, recheck): a storm of duplicate webhooks is one settle.
  const id = bullJobId(
    'settle',
    payload.jobId,
    payload.taskId,
    payload.statusHint ?? 'poll',
    String(payload.recheck),
  );
  return queues.settle.add('job.settle', payload, {
    jobId: id,
    ...(options.delay ? { delay: options.delay } : {}),
  });
}

interface PendingCreate {
  record: JobRecord;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for new jobs. Each job's record and its dispatch job are written in one MULTI,
 * so a crash or a dropped connection leaves both or neither, never a record nobody will
 * dispatch. Submissions that arrive in the same event-loop turn share one MULTI: under load that
 * is one round trip and one transaction for many jobs (ioredis builds every MULTI by copying all
 * of BullMQ's ~50 script commands, a cost worth paying once per batch, not once per job); at low
 * load a batch is one job and waits for nothing but the current turn.
 * It uses BullMQ's `Job#addJob(client)`, the call its own addBulk makes on a pipeline; records
 * share the queue's hash tag, so the transaction holds on Redis Cluster too.
 */
export class JobCreator {
  private pending: PendingCreate[] = [];
  private scheduled = false;

  constructor(
    private readonly store: JobStore,
    private readonly queues: Queues,
    private readonly maxBatch = 256,
  ) {}

  create(record: JobRecord): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ record, resolve, reject });
      if (this.pending.length >= this.maxBatch) {
        void this.flush();
      } else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    try {
      const queue = this.queues.dispatch;
      const multi = (await queue.client).multi();
      for (const { record } of batch) {
        this.store.createIn(multi as unknown as ChainableCommander, record);
        const opts = { ...JOB_CATALOG['job.dispatch'].options, jobId: bullJobId(record.id) };
        await new Job(queue, 'job.dispatch', { jobId: record.id }, opts, opts.jobId).addJob(multi);
      }
      const results = await multi.exec();
      if (!results)
        throw new AppError('REDIS_UNAVAILABLE', 'the job transaction was aborted', {
          statusCode: 503,
          retryable: true,
        });
      batch.forEach((item, i) => {
        const [createErr, created] = results[2 * i] ?? [new Error('missing reply'), null];
        const [addErr] = results[2 * i + 1] ?? [new Error('missing reply')];
        if (createErr || addErr) item.reject(createErr ?? addErr);
        else if (created === 0)
          item.reject(new AppError('CONFLICT', `job ${item.record.id} already exists`, { statusCode: 409 }));
        else item.resolve();
      });
    } catch (err) {
      for (const item of batch) item.reject(err);
    }
  }
}

const creators = new WeakMap<Queues, JobCreator>();

/** Create a job's record and enqueue its dispatch, atomically (see JobCreator). */
export function createAndEnqueue(store: JobStore, queues: Queues, record: JobRecord): Promise<void> {
  let creator = creators.get(queues);
  if (!creator) {
    creator = new JobCreator(store, queues);
    creators.set(queues, creator);
  }
  return creator.create(record);
}
