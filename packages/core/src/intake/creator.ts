import type { ChainableCommander } from 'ioredis';
import { AppError } from '../errors/app-error.js';
import type { JobStore } from '../model/job-store.js';
import type { JobRecord } from '../model/record.js';
import type { FairQueue } from '../scheduling/fair-queue.js';

interface PendingCreate {
  record: JobRecord;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for new jobs. Each job's record and its place in its tenant's line are written in
 * one MULTI, so a crash or a dropped connection leaves both or neither, never a record nobody will
 * dispatch. Submissions that arrive in the same event-loop turn share one MULTI: under load that
 * is one round trip for many jobs (ioredis builds every MULTI by copying all the scripts defined
 * on the connection, a cost worth paying once per batch); at low load a batch is one job and waits
 * for nothing but the current turn. Records and lines share the queue's hash tag, so the
 * transaction holds on Redis Cluster too. After the commit the fair-share feeder is kicked.
 */
export class JobCreator {
  private pending: PendingCreate[] = [];
  private scheduled = false;

  constructor(
    private readonly store: JobStore,
    private readonly fair: FairQueue,
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
      const multi = this.store.multi();
      for (const { record } of batch) {
        this.store.createIn(multi as ChainableCommander, record);
        this.fair.pushIn(multi, record.id, record.tenant);
      }
      const results = await multi.exec();
      if (!results)
        throw new AppError('REDIS_UNAVAILABLE', 'the job transaction was aborted', {
          statusCode: 503,
          retryable: true,
        });
      batch.forEach((item, i) => {
        const [createErr, created] = results[2 * i] ?? [new Error('missing reply'), null];
        const [pushErr] = results[2 * i + 1] ?? [new Error('missing reply')];
        if (createErr || pushErr) item.reject(createErr ?? pushErr);
        else if (created === 0)
          item.reject(new AppError('CONFLICT', `job ${item.record.id} already exists`, { statusCode: 409 }));
        else item.resolve();
      });
    } catch (err) {
      for (const item of batch) item.reject(err);
      return;
    }
    void this.fair.kick();
  }
}
