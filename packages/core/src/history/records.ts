import type { Redis } from 'ioredis';
import type { BatchStore } from '../batches/batch-store.js';
import { type BatchView, type BatchViewDeps, loadBatchView } from '../batches/view.js';
import type { Keys } from '../infra/keys.js';
import {
  decodeCursor,
  encodeCursor,
  idAt,
  type JobListPage,
  type JobListQuery,
  listJobs,
} from '../model/job-list.js';
import type { JobStore } from '../model/job-store.js';
import { decodeRecord, type JobRecord } from '../model/record.js';
import type { JobState } from '../model/states.js';
import type { Database } from './db.js';
import {
  archivedBatch,
  archivedBatchIds,
  archivedBatchJobs,
  archivedJob,
  archivedJobs,
  archivedJobsById,
} from './reads.js';

export type RecordsDeps = BatchViewDeps & { redis: Redis; keys: Keys; store: JobStore; batches: BatchStore };

/** Most rows a filtered batch listing reads for one page (as model/job-list.ts does). */
const MAX_SCAN = 5_000;

/**
 * Reads that do not care where a record lives: Redis holds the live ones and those finished
 * within REDIS_JOB_RETENTION_MS, PostgreSQL every finished one. A record in Redis wins (a batch
 * retry may have re-run an archived job); listings merge both in the same stable order (ids are
 * ULIDs, rows by line), with the same cursors, so a client pages through without noticing.
 * Without a database (a deployment that has none yet) they read Redis alone.
 */
export class Records {
  constructor(
    private readonly live: RecordsDeps,
    private readonly db: Database | undefined,
  ) {}

  async job(id: string): Promise<JobRecord | undefined> {
    return (await this.live.store.get(id)) ?? (this.db ? archivedJob(this.db, id) : undefined);
  }

  async batch(id: string): Promise<BatchView | undefined> {
    return (await loadBatchView(this.live, id)) ?? (this.db ? archivedBatch(this.db, id) : undefined);
  }

  /** A tenant's batch ids, newest first, after `cursor`. */
  async batchIds(tenant: string, limit: number, cursor?: string): Promise<string[]> {
    const live = await this.live.batches.list(tenant, limit, cursor);
    if (!this.db) return live;
    const archived = await archivedBatchIds(this.db, tenant, limit, cursor);
    return [...new Set([...live, ...archived])].sort((a, b) => (a < b ? 1 : -1)).slice(0, limit);
  }

  /** A batch's rows in line order after `afterLine` (the live index, with evicted rows read back). */
  async batchJobs(batchId: string, afterLine: number, limit: number, state?: JobState): Promise<JobRecord[]> {
    const { redis, keys } = this.live;
    if ((await redis.exists(keys.batchJobs(batchId))) === 0) {
      return this.db ? archivedBatchJobs(this.db, batchId, afterLine, limit, state) : [];
    }
    const ids = await redis.zrangebyscore(
      keys.batchJobs(batchId),
      `(${afterLine}`,
      '+inf',
      'LIMIT',
      0,
      limit,
    );
    const records = await this.byIds(ids);
    return records.filter((r) => state === undefined || r.state === state);
  }

  /** Every row of a batch in line order, 500 at a time. */
  async *eachBatchJob(batchId: string): AsyncGenerator<JobRecord> {
    let after = 0;
    for (;;) {
      const jobs = await this.batchJobs(batchId, after, 500);
      if (jobs.length === 0) return;
      for (const job of jobs) {
        after = job.line ?? after;
        yield job;
      }
    }
  }

  /** GET /v1/jobs: both sides merged by id, or a batch's rows by line. */
  async listJobs(query: JobListQuery): Promise<JobListPage> {
    if (query.batch !== undefined) return this.listBatchJobs(query);
    const livePage = await listJobs(this.live.redis, this.live.keys, query);
    if (!this.db) return livePage;
    const cursor = decodeCursor(query.cursor);
    const archived = await archivedJobs(this.db, {
      tenant: query.tenant,
      state: query.state,
      fromId: query.createdFrom ? idAt(query.createdFrom.getTime()) : undefined,
      toId: query.createdTo ? idAt(query.createdTo.getTime()) : undefined,
      afterId: cursor.id,
      order: query.order,
      limit: query.limit + 1,
    });
    // An archived job that is live again (re-run) is the live one's to show, or not.
    const stillLive = await this.liveIds(archived.map((r) => r.id));
    const merged = new Map(livePage.jobs.map((j) => [j.id, j]));
    for (const record of archived)
      if (!stillLive.has(record.id) && !merged.has(record.id)) merged.set(record.id, record);
    const sorted = [...merged.values()].sort((a, b) =>
      query.order === 'desc' ? (a.id < b.id ? 1 : -1) : a.id < b.id ? -1 : 1,
    );
    const page = sorted.slice(0, query.limit);
    const more =
      sorted.length > query.limit || livePage.next_cursor !== null || archived.length > query.limit;
    const last = page.at(-1);
    return { jobs: page, next_cursor: more && last ? encodeCursor({ id: last.id }) : null };
  }

  private async listBatchJobs(query: JobListQuery): Promise<JobListPage> {
    const jobs: JobRecord[] = [];
    let after = decodeCursor(query.cursor).line ?? 0;
    for (let scanned = 0; scanned < MAX_SCAN; ) {
      const chunk = await this.batchJobs(query.batch!, after, Math.min(500, MAX_SCAN - scanned));
      if (chunk.length === 0) return { jobs, next_cursor: null };
      for (const job of chunk) {
        after = job.line ?? after;
        scanned++;
        if (query.state !== undefined && job.state !== query.state) continue;
        const created = Date.parse(job.created_at);
        if (query.createdFrom && created < query.createdFrom.getTime()) continue;
        if (query.createdTo && created >= query.createdTo.getTime()) continue;
        jobs.push(job);
        if (jobs.length >= query.limit) return { jobs, next_cursor: encodeCursor({ line: after }) };
      }
    }
    return { jobs, next_cursor: encodeCursor({ line: after }) };
  }

  /** Records by id in the given order: Redis first, the history for the ones that left it. */
  private async byIds(ids: readonly string[]): Promise<JobRecord[]> {
    if (ids.length === 0) return [];
    const pipeline = this.live.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.live.keys.job(id));
    const replies = (await pipeline.exec()) ?? [];
    const live = replies.map(([, hash]) => {
      const h = hash as Record<string, string> | null;
      return h?.state ? decodeRecord(h) : undefined;
    });
    const missing = ids.filter((_, i) => live[i] === undefined);
    const archived = this.db && missing.length > 0 ? await archivedJobsById(this.db, missing) : new Map();
    return ids.flatMap((id, i) => {
      const record = live[i] ?? archived.get(id);
      return record ? [record] : [];
    });
  }

  private async liveIds(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const pipeline = this.live.redis.pipeline();
    for (const id of ids) pipeline.exists(this.live.keys.job(id));
    const replies = (await pipeline.exec()) ?? [];
    return new Set(ids.filter((_, i) => replies[i]?.[1] === 1));
  }
}
