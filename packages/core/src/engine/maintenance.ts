import { expireBatches as expireClosedBatches, expireRow } from '../batches/expire.js';
import type { JobRecord } from '../model/record.js';
import { isTerminalState } from '../model/states.js';
import type { EngineContext } from './context.js';
import { chargeBilled, notifyTerminal, ownerOf, releaseUnbilled } from './terminal.js';

/**
 * Background duties of a job's life, each safe to run on every worker at once (all writes are
 * idempotent or compare-and-set), so there is no leader to elect. The worker runs them on timers.
 */

/** Feed the dispatch queue from the tenants' lines, and re-add picks a crash left behind. */
export async function feed(ctx: EngineContext): Promise<void> {
  await ctx.fair.kick();
  await ctx.fair.recover(10_000);
}

/** Unpark jobs when money freed up (a settle, a raised limit), or on `force` (windows roll over). */
export function unpark(ctx: EngineContext, force = false): Promise<number> {
  return ctx.parking.runIfWoken(force);
}

/** Recover in-flight slots held by jobs that reached a terminal state (or vanished) without releasing them. */
export async function sweepInFlight(ctx: EngineContext, olderThanMs: number): Promise<number> {
  let recovered = 0;
  for (const jobId of await ctx.gate.heldSince(olderThanMs)) {
    const job = await ctx.store.get(jobId);
    if (!job || isTerminalState(job.state) || job.state === 'queued' || job.state === 'waiting_budget') {
      if (await ctx.gate.release(jobId)) {
        recovered++;
        ctx.logger.warn({ jobId, state: job?.state }, 'recovered a lost in-flight slot');
      }
    }
  }
  return recovered;
}

/**
 * Batches: remove uploads that died before their commit (nobody ever saw them), and finish lining
 * up committed batches whose API process died half-way (their counts already match).
 */
export async function sweepBatches(ctx: EngineContext, abandonedUploadMs: number): Promise<void> {
  for (const batchId of await ctx.batches.abandonedUploads(abandonedUploadMs)) {
    // Only if it is still silent: an upload that wrote a chunk since the list was read lives on.
    if (await ctx.batches.discard(batchId, Date.now() - abandonedUploadMs))
      ctx.logger.warn({ batchId }, 'removed a manifest upload that never committed');
  }
  for (const batchId of await ctx.batches.unlined(60_000)) await ctx.batches.lineUp(batchId, ctx.fair);
}

/** What expiring a row needs from the engine: its moves, its line, its money, its callbacks. */
export function expireDeps(ctx: EngineContext) {
  return {
    store: ctx.store,
    fair: ctx.fair,
    ledger: ctx.ledger,
    batches: ctx.batches,
    onMoneyFreed: () => ctx.parking.wake(),
    onTerminal: (job: JobRecord) => notifyTerminal(ctx, job.id),
  };
}

/** Batches whose completion_window closed: their rows still in line (queued, parked) end `expired`. */
export async function expireBatches(ctx: EngineContext): Promise<number> {
  const expired = await expireClosedBatches(expireDeps(ctx));
  if (expired > 0) ctx.logger.info({ expired }, 'expired batch rows still in line when their window closed');
  return expired;
}

/** One row met at dispatch after its window closed (put back in line after a refused submit, say). */
export function expireAtDispatch(ctx: EngineContext, record: JobRecord): Promise<boolean> {
  return expireRow(expireDeps(ctx), record);
}

/**
 * Money of jobs that ended without it settled: a settle step that moved a job to its terminal
 * state and then never finished (its BullMQ job failed after too many stalls, say) leaves the
 * reservation held and the bill uncharged. Every reservation is read (an HSCAN bounded by the
 * jobs in flight), and a job finished longer ago than `olderThanMs` is settled from its record:
 * charged what the record says was billed, or released. Idempotent (the ledger charges a task and
 * a charge id once), so a settle still running elsewhere changes nothing.
 */
export async function sweepMoney(ctx: EngineContext, olderThanMs: number): Promise<number> {
  let settled = 0;
  let cursor = '0';
  do {
    const page = await ctx.ledger.reservedJobs(cursor);
    cursor = page.cursor;
    for (const jobId of page.jobIds) {
      const record = await ctx.store.get(jobId);
      if (!record) {
        // A job holds a reservation only once its record exists, and a record leaves Redis only
        // long after its money is settled: a reservation with no record was made for a job that
        // a Redis failover lost (a dispatch that read it on the old primary reserved on the new
        // one). Nothing will ever settle it; it only holds budget.
        if (await ctx.ledger.release({ jobId, tenant: '' })) {
          settled++;
          ctx.logger.warn({ jobId }, 'released the reservation of a job that does not exist');
        }
        continue;
      }
      if (!isTerminalState(record.state)) continue;
      if (Date.now() - Date.parse(record.finished_at ?? record.updated_at) < olderThanMs) continue;
      let moved: boolean;
      if (record.billed_ms !== undefined && record.cost_micro_usd !== undefined) {
        moved = await chargeBilled(ctx, {
          ...ownerOf(record),
          ...(record.reruns ? { chargeId: `${record.id}#rerun-${record.reruns}` } : {}),
          ...(record.task_id ? { taskId: record.task_id } : {}),
          attempt: record.attempt,
          kind: 'run',
          day: (record.finished_at ?? record.updated_at).slice(0, 10),
          resolution: record.input.resolution,
          ms: record.billed_ms,
          microUsd: record.cost_micro_usd,
          priceVersion: record.price_version ?? ctx.prices.version,
        });
        // Charged already, and a reservation is held all the same: a step of this job that a
        // Redis failover made redo its claim reserved again after the charge (or the charge's
        // release was lost with the old primary). The job is over: nothing will ever settle it.
        if (!moved) moved = await releaseIfStillFinished(ctx, record);
      } else {
        moved = await releaseUnbilled(ctx, record);
      }
      if (!moved) continue;
      settled++;
      ctx.logger.warn(
        { jobId, tenant: record.tenant, state: record.state },
        'settled the money of a job that ended without it',
      );
    }
  } while (cursor !== '0');
  return settled;
}

/**
 * Release a finished job's reservation, unless the job moved since `record` was read (a rerun of
 * a failed row is queued again, and its dispatch reserves anew: that money is not stale).
 */
async function releaseIfStillFinished(ctx: EngineContext, record: JobRecord): Promise<boolean> {
  const now = await ctx.store.get(record.id);
  if (!now || now.version !== record.version || !isTerminalState(now.state)) return false;
  if (!(await ctx.ledger.release(ownerOf(record)))) return false;
  // The charge above woke the parking lot before this money was free: a pass that ran in between
  // found no room, and nothing else would wake it again for this release.
  await ctx.parking.wake();
  return true;
}

/**
 * Dispatch steps that failed for good while their job is still `queued` (attempts used up by
 * errors nobody handled, or too many stalls): nothing would ever dispatch the job again. Each is
 * put back at the head of its line and its failed step removed, so the job is not lost.
 */
export async function recoverDispatches(ctx: EngineContext): Promise<number> {
  let recovered = 0;
  for (const step of await ctx.queues.dispatch.getFailed(0, 199)) {
    const jobId = (step.data as { jobId?: string } | undefined)?.jobId;
    const record = jobId ? await ctx.store.get(jobId) : undefined;
    if (record?.state === 'queued') {
      await ctx.fair.push(record.id, record.tenant, 'front');
      recovered++;
      ctx.logger.warn(
        { jobId, tenant: record.tenant, reason: step.failedReason },
        'a failed dispatch left its job queued: lined it up again',
      );
    }
    // A job in any other state is someone else's to move (reconcile, settle): its failed step is done.
    await step.remove().catch(() => undefined);
  }
  return recovered;
}
