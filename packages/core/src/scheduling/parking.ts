import type { Redis } from 'ioredis';
import type { Keys } from '../infra/keys.js';
import type { Logger } from '../infra/logger.js';
import { loadLua } from '../infra/lua.js';
import type { JobStore } from '../model/job-store.js';
import type { JobRecord } from '../model/record.js';
import type { Ledger } from '../money/ledger.js';
import type { FairQueue } from './fair-queue.js';

interface ParkingRedis extends Redis {
  recastDropEmptySignature(parked: string, signatures: string, signature: string): Promise<number>;
  recastReleaseLock(lock: string, token: string): Promise<number>;
}

/**
 * The budget parking lot: jobs whose budgets had no room wait here (`waiting_budget`) instead of
 * failing, and go back to the head of their tenant's line when money frees up: a settle that
 * releases a reservation, a raised limit, or a new day or month.
 * Parked jobs are grouped by what they are charged against (tenant and batch); within a group
 * the oldest goes first and a pass stops at the first one that still does not fit, so a large
 * job is not overtaken forever by small ones, and a pass costs O(groups + jobs released).
 */
export class BudgetParking {
  private readonly redis: ParkingRedis;
  private running: Promise<number> | undefined;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly store: JobStore,
    private readonly ledger: Ledger,
    private readonly fair: FairQueue,
    private readonly logger?: Logger,
  ) {
    if (!('recastDropEmptySignature' in redis)) {
      redis.defineCommand(
        'recastDropEmptySignature',
        loadLua(new URL('./lua/drop-empty-signature-2.lua', import.meta.url)),
      );
      redis.defineCommand('recastReleaseLock', loadLua(new URL('./lua/release-lock-1.lua', import.meta.url)));
    }
    this.redis = redis as ParkingRedis;
  }

  private signature(job: Pick<JobRecord, 'tenant' | 'batch_id'>): string {
    return `${job.tenant}|${job.batch_id ?? '-'}`;
  }

  /** Park a `queued` job. Returns false when the job had moved on (nothing parked). */
  async park(job: JobRecord, blockedBy: string, at = new Date()): Promise<boolean> {
    const signature = this.signature(job);
    const parked = this.keys.parkedPrefix() + signature;
    // Index first, then the state: a crash in between leaves an index entry the next pass drops.
    await this.redis.multi().zadd(parked, 0, job.id).sadd(this.keys.parkedSignatures(), signature).exec();
    const moved = await this.store.transition(
      job.id,
      'waiting_budget',
      { budget_blocked_by: blockedBy, parked_at: at.toISOString() },
      { from: ['queued'] },
    );
    if (!moved.ok) await this.redis.zrem(parked, job.id);
    return moved.ok;
  }

  async parkedCount(): Promise<number> {
    const signatures = await this.redis.smembers(this.keys.parkedSignatures());
    if (signatures.length === 0) return 0;
    const pipeline = this.redis.pipeline();
    for (const s of signatures) pipeline.zcard(this.keys.parkedPrefix() + s);
    const replies = (await pipeline.exec()) ?? [];
    return replies.reduce((sum, [, n]) => sum + Number(n ?? 0), 0);
  }

  /** One pass over every group; returns how many jobs went back in line. */
  async unparkPass(maxJobs = 10_000): Promise<number> {
    let released = 0;
    for (const signature of await this.redis.smembers(this.keys.parkedSignatures())) {
      const parked = this.keys.parkedPrefix() + signature;
      while (released < maxJobs) {
        const [jobId] = await this.redis.zrange(parked, 0, 0);
        if (!jobId) {
          await this.redis.recastDropEmptySignature(parked, this.keys.parkedSignatures(), signature);
          break;
        }
        const job = await this.store.get(jobId);
        if (job?.state !== 'waiting_budget') {
          await this.redis.zrem(parked, jobId);
          continue;
        }
        const owner = { jobId, tenant: job.tenant, batch_id: job.batch_id };
        const reserved = await this.ledger.reserve(owner, job.estimate_micro_usd ?? 0);
        if (!reserved.ok) {
          const blockedBy = `${reserved.scope}|${reserved.window}`;
          if (blockedBy !== job.budget_blocked_by)
            await this.store.transition(
              jobId,
              'waiting_budget',
              { budget_blocked_by: blockedBy },
              {
                from: ['waiting_budget'],
              },
            );
          break;
        }
        // Back to the head of its line, its state, and out of the lot: one transaction.
        const multi = this.store.multi();
        this.fair.pushIn(multi, jobId, job.tenant, 'front');
        this.store.transitionIn(
          multi,
          jobId,
          'queued',
          { budget_blocked_by: null, reserved_micro_usd: job.estimate_micro_usd ?? 0 },
          { from: ['waiting_budget'] },
        );
        multi.zrem(parked, jobId);
        const results = (await multi.exec()) ?? [];
        const moved = results[1]?.[1] ? (results[1][1] as unknown[])[0] === 1 : false;
        if (!moved) {
          // Cancelled, or released by a concurrent pass: give the money back only if this pass
          // reserved it (a 'held' reservation belongs to whoever moved the job).
          if (!reserved.held) await this.ledger.release(owner);
          continue;
        }
        released++;
        this.logger?.info(
          { jobId, tenant: job.tenant, batchId: job.batch_id },
          'job left the budget parking lot',
        );
      }
    }
    if (released > 0) void this.fair.kick();
    return released;
  }

  /**
   * Ask for a pass: money was freed or a limit changed. Any worker process may run it (see
   * runIfWoken); the request is a key in Redis, so it survives until someone does.
   */
  async wake(): Promise<void> {
    await this.redis.set(this.keys.unparkWake(), '1');
  }

  /**
   * Run a pass if one was asked for (or `force`), on one process at a time across the
   * deployment: concurrent passes would race for the same head jobs. A wake that arrives during
   * a pass stays set, so the next tick runs again. Calls in this process fold into one.
   */
  runIfWoken(force = false): Promise<number> {
    if (this.running) return this.running;
    this.running = (async () => {
      const lock = `${this.keys.unparkWake()}:lock`;
      const token = `${process.pid}:${Math.random().toString(36).slice(2)}`;
      try {
        if (!force && !(await this.redis.exists(this.keys.unparkWake()))) return 0;
        if ((await this.redis.set(lock, token, 'PX', 60_000, 'NX')) !== 'OK') return 0;
        try {
          await this.redis.del(this.keys.unparkWake());
          return await this.unparkPass();
        } finally {
          await this.redis.recastReleaseLock(lock, token);
        }
      } catch (err) {
        this.logger?.error({ err: (err as Error).message }, 'unpark pass failed');
        return 0;
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }
}
