import type { Redis } from 'ioredis';
import { AppError } from '../errors/app-error.js';
import type { Keys } from '../infra/keys.js';
import { loadLua } from '../infra/lua.js';
import type { Resolution } from '../model/schema.js';
import {
  BUDGET_WINDOWS,
  type BudgetScope,
  type BudgetWindow,
  limitField,
  periodOf,
  scopesOf,
} from './scopes.js';

/** Who a job's money belongs to: the budget scopes and the report dimensions follow from it. */
export interface JobOwner {
  jobId: string;
  tenant: string;
  batch_id?: string | undefined;
}

/**
 * What a charge is for: the run that ended the job, a billed provider failure that was retried
 * as a new attempt, or a second task of one job (another client, a provider bug, a crash window)
 * that the provider billed too.
 */
export const CHARGE_KINDS = ['run', 'retried_failure', 'duplicate'] as const;
export type ChargeKind = (typeof CHARGE_KINDS)[number];

export interface Charge extends JobOwner {
  /** Charged at most once per id: the job id, unless a finished job was re-run (see batch retry). */
  chargeId?: string;
  /** The provider task billed: a task is charged at most once, whatever the charge id. */
  taskId?: string;
  attempt?: number;
  /** `run` by default. A duplicate is charged without touching the job's reservation. */
  kind?: ChargeKind;
  /** When the ledger wrote it (server clock, ms): read back from the ledger, never given. */
  chargedAtMs?: number;
  /** UTC calendar day the job settled on, YYYY-MM-DD. */
  day: string;
  resolution: Resolution;
  ms: number;
  microUsd: number;
  priceVersion: string;
}

export type ReserveResult =
  | { ok: true; held: boolean }
  | { ok: false; scope: BudgetScope; window: BudgetWindow; limitMicroUsd: number; usedMicroUsd: number };

interface LedgerRedis extends Redis {
  recastReserve(numKeys: number, ...args: string[]): Promise<[1, string] | [0, string, string, string]>;
  recastSettle(numKeys: number, ...args: string[]): Promise<number>;
}

/** Billed totals by resolution: milliseconds, jobs and micro-dollars. */
export type ResolutionTotals = Record<string, { ms: number; jobs: number; micro_usd: number }>;

function totalsOf(hash: Record<string, string>): ResolutionTotals {
  const out: ResolutionTotals = {};
  for (const [field, value] of Object.entries(hash)) {
    const [resolution, metric] = field.split('|') as [string, string];
    const totals = out[resolution] ?? { ms: 0, jobs: 0, micro_usd: 0 };
    out[resolution] = totals;
    if (metric === 'ms') totals.ms = Number(value);
    else if (metric === 'count') totals.jobs = Number(value);
    else if (metric === 'micro_usd') totals.micro_usd = Number(value);
  }
  return out;
}

export function utcDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function assertMoney(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new AppError('INTERNAL', `ledger ${name} must be a non-negative integer, got ${value}`);
}

/**
 * The money ledger, Recast's core: reservations against budgets before a job is submitted, and
 * the actual cost once it settles. Written here rather than taken from a library because it is
 * the product: every write is one Lua script over keys that share `{ledger}`, so
 * - a reservation is all-or-nothing across every scope × window a job falls under, and
 *   reserved + spent never exceeds a limit at any instant, whatever the number of workers;
 * - a settle charges a job at most once (idempotent by job id) and moves its reservation to spent
 *   in the very periods it was reserved in;
 * - report counters (day × resolution × tenant × batch) are updated in O(1) per job.
 */
export class Ledger {
  private readonly redis: LedgerRedis;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
  ) {
    if (!('recastReserve' in redis)) {
      redis.defineCommand('recastReserve', loadLua(new URL('./lua/reserve-n.lua', import.meta.url)));
      redis.defineCommand('recastSettle', loadLua(new URL('./lua/settle-n.lua', import.meta.url)));
    }
    this.redis = redis as LedgerRedis;
  }

  /** Usage hashes a job's spend counts in at `at`: every scope × window period. */
  private usageTargets(owner: JobOwner, at: Date): { key: string; field: string }[] {
    return scopesOf(owner).flatMap((scope) =>
      BUDGET_WINDOWS.map((window) => ({
        key: this.keys.budgetUsage(scope, periodOf(window, at)),
        field: limitField(scope, window),
      })),
    );
  }

  /** Reserve `amount` for a job against all its budgets, or nothing (see reserve-n.lua). */
  async reserve(owner: JobOwner, amount: number, at = new Date()): Promise<ReserveResult> {
    assertMoney('reservation', amount);
    const targets = this.usageTargets(owner, at);
    const reply = await this.redis.recastReserve(
      2 + targets.length,
      this.keys.budgetLimits(),
      this.keys.reservations(),
      ...targets.map((t) => t.key),
      owner.jobId,
      String(amount),
      ...targets.map((t) => t.field),
    );
    if (reply[0] === 1) return { ok: true, held: reply[1] === 'held' };
    const [scope, window] = reply[1].split('|') as [BudgetScope, BudgetWindow];
    return {
      ok: false,
      scope,
      window,
      limitMicroUsd: Number(reply[2]),
      usedMicroUsd: Number(reply[3]),
    };
  }

  /** One page of the jobs holding a reservation (HSCAN: bounded by what is in flight, not history). */
  async reservedJobs(cursor = '0', count = 500): Promise<{ cursor: string; jobIds: string[] }> {
    const [next, flat] = await this.redis.hscan(this.keys.reservations(), cursor, 'COUNT', count);
    return { cursor: next, jobIds: flat.filter((_, i) => i % 2 === 0) };
  }

  async reservationOf(jobId: string): Promise<number | undefined> {
    const entry = await this.redis.hget(this.keys.reservations(), jobId);
    return entry ? Number(entry.split(' ')[0]) : undefined;
  }

  /**
   * Record a billed job's actual cost and release its reservation. Returns true when this call
   * did it, false when the job was charged already (a retried or duplicated settle).
   */
  async charge(charge: Charge, at = new Date()): Promise<boolean> {
    assertMoney('ms', charge.ms);
    assertMoney('microUsd', charge.microUsd);
    return this.settle(charge, charge.kind === 'duplicate' ? 'duplicate' : 'charge', charge, at);
  }

  /** Release a job's reservation when nothing was billed (failure, cancel before spend). */
  async release(owner: JobOwner, at = new Date()): Promise<boolean> {
    return this.settle(owner, 'release', undefined, at);
  }

  private async settle(
    owner: JobOwner,
    mode: 'charge' | 'release' | 'duplicate',
    charge: Charge | undefined,
    at: Date,
  ) {
    for (let tries = 0; ; tries++) {
      // A duplicate is spent in the current periods; the job's own reservation is not its to move.
      const reservation =
        mode === 'duplicate' ? '' : ((await this.redis.hget(this.keys.reservations(), owner.jobId)) ?? '');
      const usageKeys = reservation
        ? reservation.split(' ').slice(1)
        : mode !== 'release'
          ? this.usageTargets(owner, at).map((t) => t.key)
          : [];
      const day = charge?.day ?? utcDay(at);
      try {
        const reply = await this.redis.recastSettle(
          9 + usageKeys.length,
          this.keys.reservations(),
          this.keys.ledgerCharged(),
          this.keys.ledgerDay(day),
          this.keys.ledgerDays(),
          this.keys.ledgerBatch(owner.batch_id ?? '-'),
          this.keys.ledgerDayTotals(day, owner.tenant),
          this.keys.ledgerDayTotals(day),
          this.keys.ledgerChargedTasks(),
          this.keys.outboxCharges(),
          ...usageKeys,
          owner.jobId,
          mode,
          String(charge?.microUsd ?? 0),
          String(charge?.ms ?? 0),
          day,
          `${charge?.resolution ?? '-'}|${owner.tenant}|${owner.batch_id ?? '-'}`,
          charge?.priceVersion ?? '',
          reservation,
          charge?.chargeId ?? owner.jobId,
          charge?.taskId ?? '',
          charge?.attempt === undefined ? '' : String(charge.attempt),
          charge?.kind ?? 'run',
        );
        return reply === 1;
      } catch (err) {
        // The reservation moved between our read and the script (a concurrent settle): read again.
        if (tries < 3 && (err as Error).message.includes('RESERVATION_CHANGED')) continue;
        throw err;
      }
    }
  }

  /** A batch's billed totals by resolution, read in O(1) whatever the batch's size. */
  async batchTotals(batchId: string): Promise<ResolutionTotals> {
    return totalsOf(await this.redis.hgetall(this.keys.ledgerBatch(batchId)));
  }

  /** A day's billed totals by resolution, of one tenant or of everyone, read in O(1). */
  async dayTotals(day: string, tenant?: string): Promise<ResolutionTotals> {
    return totalsOf(await this.redis.hgetall(this.keys.ledgerDayTotals(day, tenant)));
  }

  async chargeOf(jobId: string): Promise<Charge | undefined> {
    const entry = await this.redis.hget(this.keys.ledgerCharged(), jobId);
    if (!entry) return undefined;
    return parseChargeEntry(jobId, entry);
  }

  /** Every charge (line item) of a job: its run's and any retried failure's or duplicate's. */
  async chargesOf(jobId: string, chargeIds: readonly string[]): Promise<Charge[]> {
    if (chargeIds.length === 0) return [];
    const entries = await this.redis.hmget(this.keys.ledgerCharged(), ...chargeIds);
    return entries.flatMap((entry, i) => (entry ? [parseChargeEntry(jobId, entry, chargeIds[i])] : []));
  }

  /** The charge that billed a provider task, if any. */
  async chargeIdOfTask(taskId: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.ledgerChargedTasks(), taskId)) ?? undefined;
  }
}

/** A charged entry (settle-n.lua); entries written before task ids were kept have 7 fields. */
export function parseChargeEntry(jobId: string, entry: string, chargeId?: string): Charge {
  const [day, resolution, tenant, batch, ms, microUsd, priceVersion, taskId, attempt, kind, chargedAt] =
    entry.split('|');
  return {
    jobId,
    ...(chargeId && chargeId !== jobId ? { chargeId } : {}),
    tenant: tenant!,
    ...(batch && batch !== '-' ? { batch_id: batch } : {}),
    day: day!,
    resolution: resolution as Resolution,
    ms: Number(ms),
    microUsd: Number(microUsd),
    priceVersion: priceVersion!,
    ...(taskId ? { taskId } : {}),
    ...(attempt ? { attempt: Number(attempt) } : {}),
    ...(kind ? { kind: kind as ChargeKind } : {}),
    ...(chargedAt ? { chargedAtMs: Number(chargedAt) } : {}),
  };
}
