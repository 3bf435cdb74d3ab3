import type { ChainableCommander, Redis } from 'ioredis';
import type { Keys } from '../infra/keys.js';
import type { Logger } from '../infra/logger.js';
import { loadLua } from '../infra/lua.js';
import { bullJobId, type Queues } from '../model/catalog.js';

interface FairRedis extends Redis {
  recastFairPush(
    active: string,
    line: string,
    clock: string,
    finish: string,
    ...args: string[]
  ): Promise<number>;
  recastFairPick(...keysAndArgs: string[]): Promise<string[]>;
  recastFairHanded(numKeys: number, ...keysAndArgs: string[]): Promise<number>;
}

export interface FairQueueOptions {
  /** How many dispatch jobs may wait in BullMQ at once; fairness is decided for the rest. */
  buffer: number;
  /** Tries of each dispatch step (DISPATCH_ATTEMPTS); the catalog's default when unset. */
  dispatchAttempts?: number;
  logger?: Logger;
}

/**
 * Weighted fair share between tenants, on top of BullMQ's open-source edition (which has no
 * groups). Why not BullMQ priorities from a per-tenant virtual time: priorities are capped at
 * 2^21 and are absolute, so a long-running deployment's virtual clock would run out of range, and
 * a job's priority cannot be re-decided once it is in BullMQ. Instead each tenant has its own
 * line in Redis and a feeder hands BullMQ only a small buffer of dispatch jobs at a time, picking
 * them in start-time-fair-queueing order (fair-pick-7.lua). A tenant that queues 100,000 jobs
 * and one that queues 10 a minute later alternate (by weight) from the next pick on; the newcomer
 * waits at most for the buffer already handed over.
 * Durability: a job's line entry is written in the same MULTI as its record; a picked job is in
 * `feeding` until its BullMQ job exists (checked in Redis, not assumed from the add's answer: see
 * fair-handed-n.lua), and recover() re-adds any that a crash or a failover left there.
 */
export class FairQueue {
  private readonly redis: FairRedis;
  private feeding: Promise<number> | undefined;
  private again = false;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly queues: Queues,
    private readonly options: FairQueueOptions,
  ) {
    if (!('recastFairPush' in redis)) {
      redis.defineCommand('recastFairPush', loadLua(new URL('./lua/fair-push-4.lua', import.meta.url)));
      redis.defineCommand('recastFairPick', loadLua(new URL('./lua/fair-pick-7.lua', import.meta.url)));
      redis.defineCommand('recastFairHanded', loadLua(new URL('./lua/fair-handed-n.lua', import.meta.url)));
    }
    this.redis = redis as FairRedis;
  }

  private k(name: string): string {
    return `${this.keys.fairPrefix()}${name}`;
  }

  private line(tenant: string): string {
    return `${this.keys.fairPrefix()}line:${tenant}`;
  }

  private pushArgs(jobIds: readonly string[], tenant: string, where: 'back' | 'front') {
    return [
      this.k('active'),
      this.line(tenant),
      this.k('clock'),
      this.k('finish'),
      tenant,
      where,
      ...jobIds,
    ] as const;
  }

  /** Queue the push on a MULTI (the job's record is created in the same transaction). */
  pushIn(multi: ChainableCommander, jobId: string, tenant: string, where: 'back' | 'front' = 'back'): void {
    (multi as unknown as FairRedis).recastFairPush(...this.pushArgs([jobId], tenant, where));
  }

  /** Queue many jobs of one tenant, in order, as one command (a batch's rows). */
  pushManyIn(multi: ChainableCommander, jobIds: readonly string[], tenant: string): void {
    if (jobIds.length > 0)
      (multi as unknown as FairRedis).recastFairPush(...this.pushArgs(jobIds, tenant, 'back'));
  }

  async push(jobId: string, tenant: string, where: 'back' | 'front' = 'back'): Promise<void> {
    await this.redis.recastFairPush(...this.pushArgs([jobId], tenant, where));
    this.kick();
  }

  /** Take a job out of its tenant's line (a cancel); a job already handed to BullMQ stays there. */
  async remove(jobId: string, tenant: string): Promise<boolean> {
    return (await this.redis.lrem(this.line(tenant), 0, jobId)) > 0;
  }

  async setWeight(tenant: string, weight: number): Promise<void> {
    if (weight === 1) await this.redis.hdel(this.keys.tenantWeights(), tenant);
    else await this.redis.hset(this.keys.tenantWeights(), tenant, String(weight));
  }

  async weights(): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(this.keys.tenantWeights());
    return Object.fromEntries(Object.entries(raw).map(([t, w]) => [t, Number(w)]));
  }

  /** Jobs waiting in each tenant's line (not yet handed to BullMQ). */
  async depths(): Promise<Record<string, number>> {
    const tenants = await this.redis.zrange(this.k('active'), 0, -1);
    if (tenants.length === 0) return {};
    const pipeline = this.redis.pipeline();
    for (const t of tenants) pipeline.llen(this.line(t));
    const replies = (await pipeline.exec()) ?? [];
    return Object.fromEntries(tenants.map((t, i) => [t, Number(replies[i]?.[1] ?? 0)]));
  }

  /** Where a job stands in its tenant's line (0 = next), or null when it is not in it. */
  async position(tenant: string, jobId: string): Promise<number | null> {
    const at = await this.redis.lpos(this.line(tenant), jobId);
    return at === null || at === undefined ? null : Number(at);
  }

  /** Hand BullMQ the next jobs in fair order, up to the buffer. Returns how many. */
  async feedOnce(max = 64): Promise<number> {
    const members = await this.redis.recastFairPick(
      this.k('active'),
      this.k('clock'),
      this.k('finish'),
      this.keys.tenantWeights(),
      this.k('feeding'),
      this.k('seq'),
      this.queues.dispatch.toKey('wait'),
      String(this.options.buffer),
      String(max),
      `${this.keys.fairPrefix()}line:`,
      String(Date.now()),
    );
    if (members.length > 0) await this.handOver(members);
    return members.length;
  }

  private async handOver(members: string[]): Promise<void> {
    // The queue's defaults (the catalog's, with the deployment's retention); only the attempts differ.
    const options = this.options.dispatchAttempts ? { attempts: this.options.dispatchAttempts } : {};
    const steps = members.map((member) => {
      const [jobId, seq] = member.split('|') as [string, string];
      return { name: 'job.dispatch', data: { jobId }, opts: { ...options, jobId: bullJobId(jobId, seq) } };
    });
    await this.queues.dispatch.addBulk(steps);
    await this.handedOver(members);
  }

  /**
   * Take members out of `feeding` whose BullMQ job exists (fair-handed-n.lua: after a failover
   * the add may be lost while this runs on the new primary); the others stay for recover().
   */
  async handedOver(members: string[]): Promise<number> {
    const stepKeys = members.map((member) => {
      const [jobId, seq] = member.split('|') as [string, string];
      return this.queues.dispatch.toKey(bullJobId(jobId, seq));
    });
    return this.redis.recastFairHanded(1 + members.length, this.k('feeding'), ...stepKeys, ...members);
  }

  /**
   * Feed until the buffer is full or the lines are empty. Calls that arrive while a feed runs
   * are folded into one more pass, so any number of triggers cost at most two feeds in a row.
   */
  kick(): Promise<number> {
    if (this.feeding) {
      this.again = true;
      return this.feeding;
    }
    this.feeding = (async () => {
      let total = 0;
      try {
        do {
          this.again = false;
          for (;;) {
            const n = await this.feedOnce();
            total += n;
            if (n < 64) break;
          }
        } while (this.again);
      } catch (err) {
        this.options.logger?.error({ err: (err as Error).message }, 'fair-share feed failed');
      } finally {
        this.feeding = undefined;
      }
      return total;
    })();
    return this.feeding;
  }

  /** Re-add picks that a crash left between the pick and BullMQ (idempotent by BullMQ job id). */
  async recover(olderThanMs: number): Promise<number> {
    const stale = await this.redis.zrangebyscore(
      this.k('feeding'),
      '-inf',
      Date.now() - olderThanMs,
      'LIMIT',
      0,
      500,
    );
    if (stale.length > 0) await this.handOver(stale);
    return stale.length;
  }
}
