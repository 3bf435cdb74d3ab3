import type { Engine } from '@recast/core/engine';
import type { Logger } from '@recast/core/infra';

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
 * The engine's background duties on timers (see maintenance.ts in the engine): each is safe to
 * run on every worker at once, so there is no leader to elect. A duty still running when its next
 * tick comes is skipped, not doubled.
 */
export function startMaintenance(
  engine: Engine,
  logger: Logger,
  options: MaintenanceOptions,
): { stop(): Promise<void> } {
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
  every(options.feedIntervalMs, 'feed', () => engine.feed());
  every(Math.min(250, options.unparkIntervalMs), 'unpark wake', () => engine.unpark());
  every(options.unparkIntervalMs, 'unpark', () => engine.unpark(true));
  every(options.inFlightSweepMs, 'in-flight sweep', () => engine.sweepInFlight(options.inFlightSweepMs));
  // Money and dispatches a step that failed for good left behind (see the engine's maintenance).
  every(options.inFlightSweepMs, 'money sweep', () => engine.sweepMoney(options.inFlightSweepMs));
  every(options.inFlightSweepMs, 'dispatch recovery', () => engine.recoverDispatches());
  every(options.inFlightSweepMs, 'batch janitor', () =>
    engine.sweepBatches(options.abandonedUploadMs ?? 15 * 60_000),
  );
  // Cheap when no window closed (one sorted-set range): rows expire within a second of theirs.
  every(1_000, 'batch windows', () => engine.expireBatches());
  return {
    async stop() {
      stopped = true;
      for (const t of timers) clearInterval(t);
    },
  };
}
