import type { WorkerContext } from './context.js';

export interface MaintenanceOptions {
  /** How often to feed the fair-share buffer even without a trigger. */
  feedIntervalMs: number;
  /** How often to try parked jobs even without a trigger (a new day or month frees budgets). */
  unparkIntervalMs: number;
  /** How often to look for in-flight slots whose job is already terminal or gone. */
  inFlightSweepMs: number;
  /** A manifest upload that has not committed after this long died with its API process. */
  abandonedUploadMs?: number;
}

/**
 * Background duties of a worker process. Each is safe to run on every worker at once (all
 * writes are idempotent or compare-and-set), so there is no leader to elect:
 * - feed the dispatch queue from the tenants' lines, and re-add picks a crash left behind;
 * - unpark jobs when woken (a settle freed money, an operator changed a limit: the API sets the
 *   wake key) and on a timer (windows roll over at UTC midnight and month starts);
 * - recover in-flight slots held by jobs that reached a terminal state without releasing them.
 */
export function startMaintenance(ctx: WorkerContext, options: MaintenanceOptions): { stop(): Promise<void> } {
  const { logger } = ctx;
  const timers: NodeJS.Timeout[] = [];
  let stopped = false;
  const every = (ms: number, what: string, fn: () => Promise<unknown>) => {
    let running = false;
    timers.push(
      setInterval(() => {
        if (running || stopped) return;
        running = true;
        fn()
          .catch((err: Error) => logger.warn({ err: err.message }, `${what} failed`))
          .finally(() => {
            running = false;
          });
      }, ms).unref(),
    );
  };

  every(options.feedIntervalMs, 'feed', async () => {
    await ctx.fair.kick();
    await ctx.fair.recover(10_000);
  });
  every(Math.min(250, options.unparkIntervalMs), 'unpark wake', () => ctx.parking.runIfWoken());
  every(options.unparkIntervalMs, 'unpark', () => ctx.parking.runIfWoken(true));
  every(options.inFlightSweepMs, 'in-flight sweep', async () => {
    for (const jobId of await ctx.gate.heldSince(options.inFlightSweepMs)) {
      const job = await ctx.store.get(jobId);
      if (!job || ['completed', 'failed', 'cancelled', 'queued', 'waiting_budget'].includes(job.state)) {
        if (await ctx.gate.release(jobId))
          logger.warn({ jobId, state: job?.state }, 'recovered a lost in-flight slot');
      }
    }
  });

  // Batches: remove uploads that died before their commit (nobody ever saw them), and finish
  // lining up committed batches whose API process died half-way (their counts already match).
  every(options.inFlightSweepMs, 'batch janitor', async () => {
    const age = options.abandonedUploadMs ?? 15 * 60_000;
    for (const batchId of await ctx.batches.abandonedUploads(age)) {
      // Only if it is still silent: an upload that wrote a chunk since the list was read lives on.
      if (await ctx.batches.discard(batchId, Date.now() - age))
        logger.warn({ batchId }, 'removed a manifest upload that never committed');
    }
    for (const batchId of await ctx.batches.unlined(60_000)) await ctx.batches.lineUp(batchId, ctx.fair);
  });

  return {
    async stop() {
      stopped = true;
      for (const t of timers) clearInterval(t);
    },
  };
}
