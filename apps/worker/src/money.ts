import type { Charge, JobRecord } from '@recast/core';
import type { WorkerContext } from './context.js';

type Deps = Pick<WorkerContext, 'ledger' | 'gate' | 'parking' | 'queues'>;

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
}

/** A billed job: charge the actual cost once, moving its reservation to spent. */
export async function chargeBilled(deps: Deps, charge: Charge): Promise<boolean> {
  const charged = await deps.ledger.charge(charge);
  // The estimate and the actual cost differ in general; what was reserved beyond it is free again.
  await afterTerminal(deps, charge.jobId, true);
  return charged;
}
