import type { Logger } from '../infra/logger.js';
import type { JobRecord } from '../model/record.js';
import { isTerminalState } from '../model/states.js';
import type { EngineContext } from './context.js';
import { ownerOf, releaseLeftover } from './terminal.js';

/**
 * The provider accepted this dispatch's task, but the job is back in `queued` on an attempt
 * before ours, with no task: the claim (and whatever came with it, the reservation, the slot) was
 * written on a primary that died before its replica had it, and the replica promoted in its
 * place never heard of it (asynchronous replication, REDIS_WAIT_REPLICAS=0). The task is ours and
 * running, so the claim is redone as it was (the reservation again, idempotent per job: `held`
 * when it survived), and the caller records the task as usual. Answers whether it was redone;
 * false when the job is anything else (a genuine faster update, a cancel).
 */
export async function redoLostClaim(
  ctx: EngineContext,
  record: JobRecord,
  dispatchId: string,
  log: Logger,
): Promise<boolean> {
  const now = await ctx.store.get(record.id);
  if (now?.state !== 'queued' || now.task_id || now.attempt >= record.attempt) return false;
  const amount = now.estimate_micro_usd ?? 0;
  const reserved = await ctx.ledger.reserve(ownerOf(now), amount);
  // Over budget now (money moved meanwhile): the task runs at the provider all the same, and is
  // charged when it settles; only the reservation that would have bounded it is missing.
  if (!reserved.ok)
    log.warn({ scope: reserved.scope, window: reserved.window }, 'lost claim redone over budget');
  const claimed = await ctx.store.transition(
    record.id,
    'submitting',
    {
      attempt: record.attempt,
      reserved_micro_usd: reserved.ok ? amount : 0,
      budget_blocked_by: null,
      dispatch_id: dispatchId,
      submit_claim: dispatchId,
      claimed_at: record.claimed_at ?? new Date().toISOString(),
      submit_ended_at: null,
    },
    { from: ['queued'] },
  );
  if (claimed.ok)
    log.warn({ attempt: record.attempt }, 'submit claim lost by Redis (failover): redone for the task sent');
  // The job moved on between the read and the claim: settled by the task's own update (charged
  // before our reservation), or cancelled. What was reserved here is nobody's.
  else if (isTerminalState(claimed.state)) await releaseLeftover(ctx, now);
  return claimed.ok;
}
