import type { Redis } from 'ioredis';
import { AppError } from '../errors/app-error.js';
import type { Keys } from '../infra/keys.js';
import { loadLua } from '../infra/lua.js';
import type { JobStore } from '../model/job-store.js';
import { decodeRecord, encodeFields, type JobRecord } from '../model/record.js';
import { type BatchStatus, JOB_STATES, type JobState } from '../model/states.js';
import type { FairQueue } from '../scheduling/fair-queue.js';

/** What is stored of a batch (its counters live next to it; its status is derived from them). */
export interface BatchRecord {
  id: string;
  tenant: string;
  name?: string;
  metadata?: Record<string, unknown>;
  mode: 'atomic' | 'partial';
  /** validating while uploading; queued once committed; cancelling / cancelled when asked. */
  stored_status: 'validating' | 'queued' | 'cancelling';
  callback_url?: string;
  max_cost_micro_usd?: number;
  /** As given (e.g. `24h`), and when it closes: rows not yet sent then end `expired`. */
  completion_window?: string;
  expires_at?: string;
  total: number;
  invalid_rows: number;
  estimated_micro_usd: number;
  estimated_ms: Record<string, number>;
  created_at: string;
  started_at?: string;
  finished_at?: string;
}

const JSON_FIELDS = new Set(['metadata', 'estimated_ms']);
const NUMBER_FIELDS = new Set(['max_cost_micro_usd', 'total', 'invalid_rows', 'estimated_micro_usd']);

function encode(batch: Partial<BatchRecord>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(batch)) {
    if (v === undefined) continue;
    out[k] = JSON_FIELDS.has(k) ? JSON.stringify(v) : String(v);
  }
  return out;
}

function decode(hash: Record<string, string>): BatchRecord {
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(hash)) {
    raw[k] = JSON_FIELDS.has(k) ? JSON.parse(v) : NUMBER_FIELDS.has(k) ? Number(v) : v;
  }
  return raw as unknown as BatchRecord;
}

export type BatchCounts = Record<JobState, number>;

/** Rows billed while being cancelled, and how many of those still ended cancelled. */
export interface CancelBills {
  billed: number;
  endedCancelled: number;
}

/** The status users see: stored while uploading or cancelling, else derived from the counters. */
export function batchStatus(batch: BatchRecord, counts: BatchCounts): BatchStatus {
  const done = counts.completed + counts.failed + counts.cancelled + counts.expired;
  if (batch.stored_status === 'validating') return 'validating';
  if (batch.stored_status === 'cancelling') return done >= batch.total ? 'cancelled' : 'cancelling';
  if (done >= batch.total) {
    if (counts.expired > 0) return 'expired';
    return counts.failed + counts.cancelled > 0 ? 'completed_with_errors' : 'completed';
  }
  return done > 0 || counts.queued + counts.waiting_budget < batch.total ? 'in_progress' : 'queued';
}

/**
 * Batches in Redis: a record, per-state counters that every job transition moves atomically
 * (transition-2.lua), and the batch's jobs by manifest line (a sorted set: paging and results in
 * row order without scanning). Written here: this is Recast's model, not a generic store.
 */
interface BatchRedis extends Redis {
  recastCreateMany(numKeys: number, ...keysAndArgs: string[]): Promise<number>;
  recastStaged(staging: string, lining: string, ...args: string[]): Promise<number>;
}

/** A staged batch went away under its upload (discarded as abandoned): the upload must stop. */
function uploadExpired(batchId: string): AppError {
  return new AppError(
    'UPLOAD_EXPIRED',
    `batch ${batchId}: the upload was abandoned and removed; upload it again`,
    {
      statusCode: 503,
      retryable: true,
    },
  );
}

export class BatchStore {
  private readonly redis: BatchRedis;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly store: JobStore,
  ) {
    if (!('recastCreateMany' in redis)) {
      redis.defineCommand(
        'recastCreateMany',
        loadLua(new URL('../model/lua/create-many-n.lua', import.meta.url)),
      );
      redis.defineCommand('recastStaged', loadLua(new URL('./lua/staged-2.lua', import.meta.url)));
    }
    this.redis = redis as BatchRedis;
  }

  /** Open an upload: an invisible batch that a janitor removes if the upload never commits. */
  async stage(batch: BatchRecord): Promise<void> {
    await this.redis
      .multi()
      .hset(this.keys.batch(batch.id), encode(batch))
      .zadd(this.keys.batchesStaging(), Date.now(), batch.id)
      .exec();
  }

  /**
   * Write a chunk of the batch's job records, indexed by line and counted as queued (not yet in
   * any line: nothing dispatches them). One script for the chunk: the batch is staged (invisible),
   * so a crash between chunks leaves nothing anyone sees, and the janitor removes it.
   */
  async addJobs(batchId: string, jobs: JobRecord[]): Promise<void> {
    if (jobs.length === 0) return;
    // Still ours, and alive: the janitor removes only uploads that stopped writing. A chunk written
    // after a claim would be left behind by the discard, so the check comes first (a claim between
    // it and the chunk is possible only for an upload silent for the whole janitor age).
    if (!(await this.staged('touch', batchId))) throw uploadExpired(batchId);
    const keys = [this.keys.batchJobs(batchId), this.keys.batchCounts(batchId)];
    const args: string[] = ['queued'];
    for (const job of jobs) {
      keys.push(this.keys.job(job.id));
      const fields = Object.entries(encodeFields(this.store.withDefaults(job))).flat();
      args.push(String(job.line ?? 0), job.id, String(fields.length), ...fields);
    }
    const created = await this.redis.recastCreateMany(keys.length, ...keys, ...args);
    if (created !== jobs.length) {
      throw new Error(`batch ${batchId}: ${jobs.length - created} job ids already existed`);
    }
  }

  /** Make a staged batch visible; its jobs are then lined up (see lineUp). */
  async commit(batchId: string, tenant: string, fields: Partial<BatchRecord>): Promise<void> {
    // The fields first: invisible until listed, and the janitor's discard removes them if it wins.
    await this.redis.hset(this.keys.batch(batchId), encode({ ...fields, stored_status: 'queued' }));
    if (!(await this.staged('commit', batchId))) {
      await this.redis.del(this.keys.batch(batchId));
      throw uploadExpired(batchId);
    }
    const multi = this.redis.multi().zadd(this.keys.tenantBatches(tenant), 0, batchId);
    const expiresAt = (await this.redis.hget(this.keys.batch(batchId), 'expires_at')) ?? undefined;
    if (expiresAt) multi.zadd(this.keys.batchesExpiring(), Date.parse(expiresAt), batchId);
    this.store.eventIn(multi, tenant, {
      type: 'batch.created',
      batch: batchId,
      rows: String(fields.total ?? 0),
      at: new Date().toISOString(),
    });
    await multi.exec();
  }

  /**
   * Put a committed batch's jobs into their tenant's line, in row order, from where the last
   * (possibly crashed) call stopped. Idempotent enough: a job pushed twice is dispatched once
   * (dispatch skips a job that is no longer queued).
   */
  async lineUp(batchId: string, fair: FairQueue, chunk = 1000): Promise<number> {
    const batchKey = this.keys.batch(batchId);
    let lined = Number((await this.redis.hget(batchKey, 'lined')) ?? 0);
    const tenant = await this.redis.hget(batchKey, 'tenant');
    if (!tenant) return 0;
    for (;;) {
      const ids = await this.redis.zrange(this.keys.batchJobs(batchId), lined, lined + chunk - 1);
      if (ids.length === 0) break;
      const multi = this.store.multi();
      this.store.indexIn(multi, ids);
      fair.pushManyIn(multi, ids, tenant);
      multi.hset(batchKey, 'lined', String(lined + ids.length));
      await multi.exec();
      lined += ids.length;
      void fair.kick();
    }
    await this.redis.zrem(this.keys.batchesLining(), batchId);
    return lined;
  }

  private async staged(op: 'touch' | 'claim' | 'commit', batchId: string, before = '+inf'): Promise<boolean> {
    const done = await this.redis.recastStaged(
      this.keys.batchesStaging(),
      this.keys.batchesLining(),
      op,
      batchId,
      String(Date.now()),
      before,
    );
    return done === 1;
  }

  /**
   * Remove a staged batch and everything written for it: an atomic upload that failed, or (with
   * `staleBefore`) one the janitor found silent since then. Claimed first, so an upload still
   * writing stops at its next chunk or at its commit, and a live one is never removed. Returns
   * false when there was nothing to remove (committed, gone, or written to since).
   */
  async discard(batchId: string, staleBefore?: number): Promise<boolean> {
    if (!(await this.staged('claim', batchId, staleBefore === undefined ? '+inf' : String(staleBefore))))
      return false;
    for (;;) {
      const ids = await this.redis.zrange(this.keys.batchJobs(batchId), 0, 999);
      if (ids.length === 0) break;
      await this.redis
        .multi()
        .del(...ids.map((id) => this.keys.job(id)))
        .zrem(this.keys.batchJobs(batchId), ...ids)
        .exec();
    }
    await this.redis
      .multi()
      .del(this.keys.batch(batchId), this.keys.batchCounts(batchId), this.keys.batchJobs(batchId))
      .zrem(this.keys.batchesStaging(), batchId)
      .exec();
    return true;
  }

  /**
   * Count a row billed although it was being cancelled (the cancel came too late: it completed,
   * or the provider charged for what it had run), and whether it still ended cancelled; `by` -1
   * takes such a cancelled row back when it runs again. The batch's `cancelled` count minus the
   * billed cancelled rows is what was cancelled before any spend. Kept beside the per-state
   * counters, so it reads in the same round trip.
   */
  async countCancelBilled(batchId: string, endedCancelled: boolean, by: 1 | -1 = 1): Promise<void> {
    const multi = this.redis.multi().hincrby(this.keys.batchCounts(batchId), 'cancel_billed', by);
    if (endedCancelled) multi.hincrby(this.keys.batchCounts(batchId), 'cancelled_billed', by);
    await multi.exec();
  }

  async get(
    batchId: string,
  ): Promise<{ batch: BatchRecord; counts: BatchCounts; cancelBills: CancelBills } | undefined> {
    const [[, hash], [, rawCounts]] = ((await this.redis
      .multi()
      .hgetall(this.keys.batch(batchId))
      .hgetall(this.keys.batchCounts(batchId))
      .exec()) ?? []) as [[unknown, Record<string, string>], [unknown, Record<string, string>]];
    if (!hash?.id) return undefined;
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, Number(rawCounts?.[s] ?? 0)])) as BatchCounts;
    const cancelBills = {
      billed: Number(rawCounts?.cancel_billed ?? 0),
      endedCancelled: Number(rawCounts?.cancelled_billed ?? 0),
    };
    return { batch: decode(hash), counts, cancelBills };
  }

  /** A finished batch runs again (retry): it is not finished, nor being cancelled, any more. */
  async reopen(batchId: string, tenant: string): Promise<void> {
    const multi = this.redis
      .multi()
      .hdel(this.keys.batch(batchId), 'finished_at')
      .hset(this.keys.batch(batchId), 'stored_status', 'queued');
    this.store.eventIn(multi, tenant, {
      type: 'batch.reopened',
      batch: batchId,
      at: new Date().toISOString(),
    });
    await multi.exec();
  }

  /** The batch is being cancelled (its status says so until its last row has settled). */
  async markCancelling(batchId: string, tenant: string): Promise<void> {
    const multi = this.redis.multi().hset(this.keys.batch(batchId), 'stored_status', 'cancelling');
    this.store.eventIn(multi, tenant, {
      type: 'batch.cancelling',
      batch: batchId,
      at: new Date().toISOString(),
    });
    await multi.exec();
  }

  /** A tenant's batch ids, newest first, after `cursor` (an id). */
  async list(tenant: string, limit: number, cursor?: string): Promise<string[]> {
    return this.redis.zrevrangebylex(
      this.keys.tenantBatches(tenant),
      cursor ? `(${cursor}` : '+',
      '-',
      'LIMIT',
      0,
      limit,
    );
  }

  /** The batch's jobs in row order, from line `afterLine` (exclusive). */
  async jobs(batchId: string, afterLine: number, limit: number): Promise<JobRecord[]> {
    const ids = await this.redis.zrangebyscore(
      this.keys.batchJobs(batchId),
      `(${afterLine}`,
      '+inf',
      'LIMIT',
      0,
      limit,
    );
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.job(id));
    const replies = (await pipeline.exec()) ?? [];
    return replies
      .map(([, hash]) => hash as Record<string, string>)
      .filter((hash) => hash?.state)
      .map((hash) => decodeRecord(hash));
  }

  /** Every job of the batch in row order, read 500 at a time (results, cancel, retry). */
  async *eachJob(batchId: string): AsyncGenerator<JobRecord> {
    let after = 0;
    for (;;) {
      const jobs = await this.jobs(batchId, after, 500);
      if (jobs.length === 0) return;
      for (const job of jobs) {
        after = job.line ?? after;
        yield job;
      }
    }
  }

  /** Staged batches older than `olderThanMs`: uploads that died; and committed ones still lining up. */
  async abandonedUploads(olderThanMs: number): Promise<string[]> {
    return this.redis.zrangebyscore(
      this.keys.batchesStaging(),
      '-inf',
      Date.now() - olderThanMs,
      'LIMIT',
      0,
      100,
    );
  }

  /** Batches whose completion_window closed by `now` and whose rows have not been swept yet. */
  async expiring(now = Date.now()): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.batchesExpiring(), '-inf', now, 'LIMIT', 0, 20);
  }

  /** The batch's rows still in line were swept: it is off the list. */
  async expiredSwept(batchId: string): Promise<void> {
    await this.redis.zrem(this.keys.batchesExpiring(), batchId);
  }

  /** Committed batches still lining up after `olderThanMs` (their API process died half-way). */
  async unlined(olderThanMs: number): Promise<string[]> {
    return this.redis.zrangebyscore(
      this.keys.batchesLining(),
      '-inf',
      Date.now() - olderThanMs,
      'LIMIT',
      0,
      100,
    );
  }
}
