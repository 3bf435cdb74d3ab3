import { enqueueSettle, enqueueWatch, WatchPayloadSchema } from '../model/catalog.js';
import type { JobRecord } from '../model/record.js';
import { isTerminalStatus } from '../provider/status.js';
import {
  done,
  type EngineContext,
  jobLogger,
  type ProviderBinding,
  providerOf,
  type StepOutcome,
} from './context.js';
import { findOrphan } from './orphans.js';

export type WatchResult = { skipped: string } | { found: string; cancelled: boolean } | { lapsed: true };

/**
 * A job left an attempt behind whose POST may still land at the provider: a lost answer or a dead
 * dispatch, and no task found when the job went on to its next attempt. A gateway can forward a
 * request long after the client gave up on it, so no wait is long enough to be sure; the attempt
 * is watched instead, until ORPHAN_WATCH_MS after it was left. A task that appears is stopped at
 * once and followed to its end (a settle of it charges it as a duplicate if it was billed anyway).
 */
export async function watchAttempt(ctx: EngineContext, data: unknown): Promise<StepOutcome<WatchResult>> {
  const provider = providerOf(ctx);
  const payload = WatchPayloadSchema.parse(data);
  const record = await ctx.store.get(payload.jobId);
  if (!record) return done({ skipped: 'missing' });
  if (record.attempt === payload.attempt && !record.task_id)
    return done({ skipped: 'still the current attempt' });
  const task = await findOrphan(
    provider.client,
    { ...record, attempt: payload.attempt },
    {
      ...provider.orphans,
      publicUrl: provider.publicUrl,
      webhookSecret: ctx.config.WEBHOOK_SECRET,
    },
  );
  if (task) {
    const log = jobLogger(ctx, record, task.id);
    const live = !isTerminalStatus(task.status);
    if (live) await provider.client.cancel(task.id);
    ctx.metrics?.duplicateTasks.inc({ outcome: live ? 'cancelled' : 'unbilled' });
    log.error(
      { attempt: payload.attempt, status: task.status },
      'a late task of an abandoned attempt landed: stopped it',
    );
    await enqueueSettle(ctx.queues, {
      jobId: record.id,
      taskId: task.id,
      attempt: payload.attempt,
      statusHint: 'duplicate',
      recheck: 0,
    });
    return done({ found: task.id, cancelled: live });
  }
  const wait = nextLook(provider, payload.until);
  if (Date.now() + wait > payload.until) return done({ lapsed: true });
  return { kind: 'delay', ms: wait, reason: 'watching an abandoned attempt' };
}

/** Start watching the attempt a job is leaving (its POST may land late). */
export async function watchAbandoned(
  ctx: EngineContext,
  provider: ProviderBinding,
  record: JobRecord,
): Promise<void> {
  await enqueueWatch(
    ctx.queues,
    { jobId: record.id, attempt: record.attempt, until: Date.now() + provider.orphans.watchMs },
    Math.max(1_000, provider.orphans.graceMs),
  );
}

/**
 * Looks come sooner at first (a late POST usually lands within seconds), then further apart: half
 * the time watched so far, at most a minute, so a watch costs a few dozen list calls at most.
 */
function nextLook(provider: ProviderBinding, until: number): number {
  const watched = Date.now() - (until - provider.orphans.watchMs);
  return Math.min(60_000, Math.max(1_000, provider.orphans.graceMs, Math.round(watched / 2)));
}
