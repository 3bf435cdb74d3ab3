import { notifyFinished } from '../callbacks/terminal.js';
import type { JobRecord } from '../model/record.js';
import type { Charge, JobOwner } from '../money/ledger.js';
import type { EngineContext } from './context.js';

type Ctx = Pick<
  EngineContext,
  'ledger' | 'gate' | 'parking' | 'queues' | 'store' | 'logger' | 'batches' | 'budgets' | 'callbacks'
>;

export function ownerOf(record: Pick<JobRecord, 'id' | 'tenant' | 'batch_id'>): JobOwner {
  return { jobId: record.id, tenant: record.tenant, batch_id: record.batch_id };
}

/**
 * A job reached a terminal state: tell its `callback_url`, if it has one (deduped per state), and
 * when it was the last unfinished row of a batch with a `callback_url`, tell that one too.
 */
export async function notifyTerminal(ctx: Ctx, jobId: string): Promise<void> {
  const record = await ctx.store.get(jobId);
  if (!record || (!record.callback_url && !record.batch_id)) return;
  if (!ctx.callbacks) {
    if (record.callback_url)
      ctx.logger.warn(
        { jobId, tenant: record.tenant },
        'job has a callback_url but no CALLBACK_SECRETS are configured',
      );
    return;
  }
  await notifyFinished({ ...ctx, notify: ctx.queues.notify }, record);
}

/** After a terminal state: the slot at the provider is free, and freed money may unpark jobs. */
async function afterTerminal(ctx: Ctx, jobId: string, moneyFreed: boolean): Promise<void> {
  const slotFreed = await ctx.gate.release(jobId);
  // A dispatch waiting for a slot need not sit out its whole poll interval.
  if (slotFreed) await ctx.queues.dispatch.removeRateLimitKey();
  if (moneyFreed) await ctx.parking.wake();
}

/**
 * A job that ended without a bill (failed, refused, cancelled before spend): release its money.
 * Answers whether a reservation was released by this call.
 */
export async function releaseUnbilled(ctx: Ctx, record: JobRecord): Promise<boolean> {
  const released = await ctx.ledger.release(ownerOf(record));
  await afterTerminal(ctx, record.id, released);
  await notifyTerminal(ctx, record.id);
  return released;
}

/** A billed job: charge the actual cost once, moving its reservation to spent. */
export async function chargeBilled(ctx: Ctx, charge: Charge): Promise<boolean> {
  const charged = await ctx.ledger.charge(charge);
  // The estimate and the actual cost differ in general; what was reserved beyond it is free again.
  await afterTerminal(ctx, charge.jobId, true);
  await notifyTerminal(ctx, charge.jobId);
  return charged;
}

/**
 * Release a finished job's reservation, if one is left (idempotent: nothing held, nothing done).
 * Unlike releaseUnbilled there is no callback and no slot to free: the job never reached the
 * provider on this path (a dispatch that reserved and then found the job cancelled).
 */
export async function releaseLeftover(ctx: Ctx, record: JobRecord): Promise<void> {
  if (await ctx.ledger.release(ownerOf(record))) await ctx.parking.wake();
}
