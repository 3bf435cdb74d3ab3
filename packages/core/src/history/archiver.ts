import type { Redis } from 'ioredis';
import { type BatchViewDeps, loadBatchView } from '../batches/view.js';
import type { Keys } from '../infra/keys.js';
import type { Logger } from '../infra/logger.js';
import { loadLua } from '../infra/lua.js';
import { decodeRecord, type JobRecord } from '../model/record.js';
import { isTerminalState } from '../model/states.js';
import { parseChargeEntry } from '../money/ledger.js';
import { BUDGET_WINDOWS, periodOf } from '../money/scopes.js';
import type { Database } from './db.js';
import { insertCharges, type LineItem, lineItemOf, upsertBatches, upsertJobs } from './writes.js';

interface ArchiveRedis extends Redis {
  recastMarkJob(job: string, outbox: string, archived: string, ...args: string[]): Promise<number>;
  recastEvictJob(numKeys: number, ...args: string[]): Promise<number>;
  recastEvictCharges(...args: string[]): Promise<number>;
  recastEvictBatch(...args: string[]): Promise<number>;
}

/** What the archiver reads from: the live records and the ledger, over one Redis connection. */
export type ArchiverDeps = BatchViewDeps & { redis: Redis; keys: Keys };

export interface ArchiverOptions {
  /** A finished job (and its charges, and a finished batch) leaves Redis this long after it is archived. */
  retentionMs: number;
  /** Records per statement and per outbox read. */
  batchSize?: number;
  logger: Logger;
  /**
   * Fault injection for tests (ARCHIVE_FAULT_PAUSE_MS in the chaos suite): called after a write to
   * PostgreSQL and before its mark in Redis, where a crash must lose and duplicate nothing.
   */
  afterWrite?: (what: 'charges' | 'jobs' | 'batches') => Promise<void> | void;
}

export interface ArchivePass {
  jobs: number;
  charges: number;
  batches: number;
  evicted: { jobs: number; charges: number; batches: number };
}

/** What waits in the outboxes, and since when (for /v1/stats and the metrics). */
export interface ArchiveBacklog {
  jobs: number;
  charges: number;
  batches: number;
  oldest_ms: number | null;
}

/**
 * The archiver: the worker side of the transactional outbox. The same Lua step that makes a job
 * terminal (transition-2.lua), notes on a finished job (annotate-1.lua, duplicate-1.lua), finishes
 * a batch or records a charge (settle-n.lua) queues it on an outbox; a pass writes what is queued
 * to PostgreSQL idempotently (upserts keyed by job, batch and charge id) and only then takes it
 * off the outbox. A crash at any point loses nothing (what is not marked is written again) and
 * duplicates nothing (the writes are upserts). While PostgreSQL is down the live path goes on and
 * the outboxes grow; the next pass that reaches the database drains them. What was archived
 * leaves Redis `retentionMs` later, never before.
 */
export class Archiver {
  private readonly redis: ArchiveRedis;
  private readonly batchSize: number;

  constructor(
    private readonly services: ArchiverDeps,
    private readonly db: Database,
    private readonly options: ArchiverOptions,
  ) {
    const redis = services.redis;
    if (!('recastMarkJob' in redis)) {
      redis.defineCommand('recastMarkJob', loadLua(new URL('./lua/mark-job-3.lua', import.meta.url)));
      redis.defineCommand('recastEvictJob', loadLua(new URL('./lua/evict-job-n.lua', import.meta.url)));
      redis.defineCommand(
        'recastEvictCharges',
        loadLua(new URL('./lua/evict-charges-4.lua', import.meta.url)),
      );
      redis.defineCommand('recastEvictBatch', loadLua(new URL('./lua/evict-batch-5.lua', import.meta.url)));
    }
    this.redis = redis as ArchiveRedis;
    this.batchSize = options.batchSize ?? 500;
  }

  /** One pass: charges, jobs and batches written, then what is old enough evicted. */
  async pass(): Promise<ArchivePass> {
    const charges = await this.archiveCharges();
    const jobs = await this.archiveJobs();
    const batches = await this.archiveBatches();
    const evicted = await this.evict();
    return { jobs, charges, batches, evicted };
  }

  /** Passes until the outboxes are empty (or `maxPasses`). */
  async drain(maxPasses = 1_000): Promise<ArchivePass> {
    const total: ArchivePass = {
      jobs: 0,
      charges: 0,
      batches: 0,
      evicted: { jobs: 0, charges: 0, batches: 0 },
    };
    for (let i = 0; i < maxPasses; i++) {
      const pass = await this.pass();
      total.jobs += pass.jobs;
      total.charges += pass.charges;
      total.batches += pass.batches;
      total.evicted.jobs += pass.evicted.jobs;
      total.evicted.charges += pass.evicted.charges;
      total.evicted.batches += pass.evicted.batches;
      if (pass.jobs + pass.charges + pass.batches < this.batchSize) break;
    }
    return total;
  }

  async backlog(): Promise<ArchiveBacklog> {
    const { keys } = this.services;
    return readBacklog(this.redis, keys);
  }

  private async archiveCharges(): Promise<number> {
    const { keys } = this.services;
    const ids = await this.redis.zrange(keys.outboxCharges(), 0, this.batchSize - 1);
    if (ids.length === 0) return 0;
    const entries = await this.redis.hmget(keys.ledgerCharged(), ...ids);
    const items: LineItem[] = [];
    ids.forEach((chargeId, i) => {
      const entry = entries[i];
      if (!entry) return;
      items.push(lineItemOf(chargeId, parseChargeEntry(chargeId.split('#')[0] ?? chargeId, entry)));
    });
    await insertCharges(this.db, items);
    await this.options.afterWrite?.('charges');
    // Only now: a crash before this line writes them again, and the insert ignores them then.
    const now = Date.now();
    await this.redis
      .multi()
      .zrem(keys.outboxCharges(), ...ids)
      .zadd(keys.archivedCharges(), ...ids.flatMap((id) => [now, id]))
      .exec();
    return ids.length;
  }

  private async archiveJobs(): Promise<number> {
    const { keys } = this.services;
    const ids = await this.redis.zrange(keys.outboxJobs(), 0, this.batchSize - 1);
    if (ids.length === 0) return 0;
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(keys.job(id));
    const replies = (await pipeline.exec()) ?? [];
    const records: JobRecord[] = [];
    for (const [, hash] of replies) {
      const h = hash as Record<string, string> | null;
      if (!h?.state) continue;
      const record = decodeRecord(h);
      if (isTerminalState(record.state)) records.push(record);
    }
    await upsertJobs(this.db, records);
    await this.options.afterWrite?.('jobs');
    const written = new Map(records.map((r) => [r.id, r]));
    const marks = this.redis.pipeline();
    for (const id of ids) {
      const record = written.get(id);
      (marks as unknown as ArchiveRedis).recastMarkJob(
        keys.job(id),
        keys.outboxJobs(),
        keys.archivedJobs(),
        id,
        String(record?.version ?? -1),
        String(record?.notes ?? 0),
      );
    }
    await marks.exec();
    return ids.length;
  }

  private async archiveBatches(): Promise<number> {
    const { keys } = this.services;
    const ids = await this.redis.zrange(keys.outboxBatches(), 0, 49);
    if (ids.length === 0) return 0;
    const views = [];
    for (const id of ids) {
      const view = await loadBatchView(this.services, id);
      if (view?.finished_at) views.push(view);
    }
    await upsertBatches(this.db, views);
    await this.options.afterWrite?.('batches');
    const now = Date.now();
    const archived = views.map((v) => v.id);
    const multi = this.redis.multi().zrem(keys.outboxBatches(), ...ids);
    if (archived.length > 0) multi.zadd(keys.archivedBatches(), ...archived.flatMap((id) => [now, id]));
    await multi.exec();
    return ids.length;
  }

  /** What was archived `retentionMs` ago or more leaves Redis, a slice per pass. */
  private async evict(): Promise<ArchivePass['evicted']> {
    const cutoff = Date.now() - this.options.retentionMs;
    return {
      jobs: await this.evictJobs(cutoff),
      charges: await this.evictCharges(cutoff),
      batches: await this.evictBatches(cutoff),
    };
  }

  private async evictJobs(cutoff: number): Promise<number> {
    const { keys } = this.services;
    const ids = await this.redis.zrangebyscore(
      keys.archivedJobs(),
      '-inf',
      cutoff,
      'LIMIT',
      0,
      this.batchSize,
    );
    if (ids.length === 0) return 0;
    const heads = this.redis.pipeline();
    for (const id of ids) heads.hmget(keys.job(id), 'tenant', 'state', 'version', 'notes');
    const replies = (await heads.exec()) ?? [];
    const evictions = this.redis.pipeline();
    ids.forEach((id, i) => {
      const [tenant, state, version, notes] = (replies[i]?.[1] as (string | null)[] | undefined) ?? [];
      const indexes =
        tenant && state
          ? [
              keys.jobIndex(),
              keys.jobIndex(undefined, state),
              keys.jobIndex(tenant),
              keys.jobIndex(tenant, state),
            ]
          : [];
      (evictions as unknown as ArchiveRedis).recastEvictJob(
        3 + indexes.length,
        keys.job(id),
        keys.archivedJobs(),
        keys.reconcile(),
        ...indexes,
        id,
        version ?? '0',
        notes ?? '0',
        String(cutoff),
      );
    });
    const results = (await evictions.exec()) ?? [];
    return results.filter(([, n]) => n === 1).length;
  }

  private async evictCharges(cutoff: number): Promise<number> {
    const { keys } = this.services;
    const ids = await this.redis.zrangebyscore(
      keys.archivedCharges(),
      '-inf',
      cutoff,
      'LIMIT',
      0,
      this.batchSize,
    );
    if (ids.length === 0) return 0;
    const entries = await this.redis.hmget(keys.ledgerCharged(), ...ids);
    const pairs = ids.flatMap((id, i) => {
      const entry = entries[i];
      return [id, entry ? (parseChargeEntry(id, entry).taskId ?? '') : ''];
    });
    return this.redis.recastEvictCharges(
      keys.ledgerCharged(),
      keys.ledgerChargedTasks(),
      keys.billingChecked(),
      keys.archivedCharges(),
      String(cutoff),
      ...pairs,
    );
  }

  private async evictBatches(cutoff: number): Promise<number> {
    const { keys } = this.services;
    const ids = await this.redis.zrangebyscore(keys.archivedBatches(), '-inf', cutoff, 'LIMIT', 0, 50);
    let evicted = 0;
    for (const id of ids) {
      const [tenant, created, finished] = await this.redis.hmget(
        keys.batch(id),
        'tenant',
        'created_at',
        'finished_at',
      );
      const done = await this.redis.recastEvictBatch(
        keys.batch(id),
        keys.batchCounts(id),
        keys.batchJobs(id),
        keys.tenantBatches(tenant ?? '-'),
        keys.archivedBatches(),
        id,
        String(cutoff),
      );
      if (done !== 1) continue;
      evicted++;
      // The batch's money keys live under {ledger}: its totals, and its budget scope's usage in
      // the periods it ran in (its max_cost limit with them).
      const scope = `batch:${id}`;
      const periods = batchPeriods(created ?? null, finished ?? null);
      await this.redis
        .multi()
        .del(keys.ledgerBatch(id), ...periods.map((period) => keys.budgetUsage(scope, period)))
        .hdel(keys.budgetLimits(), ...BUDGET_WINDOWS.map((w) => `${scope}|${w}`))
        .exec();
    }
    return evicted;
  }
}

/** The budget periods (every window) a batch could have been charged in, from its first to its last day. */
function batchPeriods(created: string | null, finished: string | null): string[] {
  const start = Date.parse(created ?? '') || Date.now();
  const end = Date.parse(finished ?? '') || Date.now();
  const periods = new Set<string>();
  for (let t = start, n = 0; t <= end + 86_400_000 && n < 400; t += 86_400_000, n++) {
    for (const window of BUDGET_WINDOWS) periods.add(periodOf(window, new Date(Math.min(t, end))));
  }
  return [...periods];
}

export async function readBacklog(redis: Redis, keys: Keys): Promise<ArchiveBacklog> {
  const [jobs, charges, batches, oldestJob, oldestCharge] = await Promise.all([
    redis.zcard(keys.outboxJobs()),
    redis.zcard(keys.outboxCharges()),
    redis.zcard(keys.outboxBatches()),
    redis.zrange(keys.outboxJobs(), 0, 0, 'WITHSCORES'),
    redis.zrange(keys.outboxCharges(), 0, 0, 'WITHSCORES'),
  ]);
  const oldest = [oldestJob[1], oldestCharge[1]].filter((s): s is string => s !== undefined).map(Number);
  return { jobs, charges, batches, oldest_ms: oldest.length > 0 ? Math.min(...oldest) : null };
}
