import { notifyFinished } from '@recast/core/callbacks';
import type { JobRecord } from '@recast/core/model';
import type { Charge } from '@recast/core/money';
import type { WorkerContext } from './context.js';

type Deps = Pick<
  WorkerContext,
  'ledger' | 'gate' | 'parking' | 'queues' | 'store' | 'notify' | 'logger' | 'batches' | 'budgets'
>;

/**
 * A job reached a terminal state: tell its `callback_url`, if it has one (deduped per state), and
 * when it was the last unfinished row of a batch with a `callback_url`, tell that one too.
 */
export async function notifyTerminal(deps: Deps, jobId: string): Promise<void> {
  const record = await deps.store.get(jobId);
  if (!record || (!record.callback_url && !record.batch_id)) return;
  if (!deps.notify) {
    if (record.callback_url)
      deps.logger.warn(
        { jobId, tenant: record.tenant },
        'job has a callback_url but no CALLBACK_SECRETS are configured',
      );
    return;
  }
  await notifyFinished({ ...deps, notify: deps.notify }, record);
}

/** After a terminal state: the slot at the provider is free, and freed money may unpark jobs. */
async function afterTerminal(deps: Deps, jobId: string, moneyFreed: boolean): Promise<void> {
  const slotFreed = await deps.gate.release(jobId);
  // A dispatch waiting for a slot need not sit out its whole poll interval.
  if (slotFreed) await deps.queues.dispatch.removeRateLimitKey();
  if (moneyFreed) await deps.parking.wake();
}

/** A job that ended without a bill (failed, refused, cancelled before spend): release its money. */
export async function releaseUnbilled(deps: Deps, record: JobRecord): Promise<void> {
  const released = await deps.ledger.release({
    jobId: record.id,
    tenant: record.tenant,
    batch_id: record.batch_id,
  });
  await afterTerminal(deps, record.id, released);
  await notifyTerminal(deps, record.id);
}

/** A billed job: charge the actual cost once, moving its reservation to spent. */
export async function chargeBilled(deps: Deps, charge: Charge): Promise<boolean> {
  const charged = await deps.ledger.charge(charge);
  // The estimate and the actual cost differ in general; what was reserved beyond it is free again.
  await afterTerminal(deps, charge.jobId, true);
  await notifyTerminal(deps, charge.jobId);
  return charged;
}
