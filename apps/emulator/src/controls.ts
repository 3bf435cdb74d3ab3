import { parseOrThrow } from './app-input.js';
import type { BillSnapshot } from './billing.js';
import type { EmulatorContext } from './context.js';
import { type Faults, FaultsPatchSchema, mergeFaults } from './faults.js';
import type { RequestRecord } from './stats.js';
import type { WebhookCounters } from './webhooks.js';

export interface EmulatorState {
  bill: BillSnapshot;
  tasks: { total: number; by_status: Record<string, number> };
  /** Accepted POST /apps/run calls. */
  submits: number;
  in_flight: { current: number; max: number };
  requests: RequestRecord[];
  webhooks: WebhookCounters;
  /** File records created by POST /files, those whose bytes were PUT, and their bytes. */
  files: { records: number; uploaded: number; bytes: number };
}

export interface EmulatorControls {
  state(): EmulatorState;
  faults(): Faults;
  /** Partial merge, validated; throws a 400 ProblemError naming the bad field. Returns all faults. */
  setFaults(patch: unknown): Faults;
  /** Clears tasks, bill, counters, request log and files; faults and the PRNG back to their start. */
  reset(): void;
}

export interface FaultsCell {
  current: Faults;
}

export function createControls(
  ctx: EmulatorContext,
  cell: FaultsCell,
  initial: { faults: Faults; seed: number },
): EmulatorControls {
  const apply = (next: Faults) => {
    const limitsChanged = JSON.stringify(next.rateLimits) !== JSON.stringify(cell.current.rateLimits);
    cell.current = next;
    if (limitsChanged) ctx.limiter.configure(next.rateLimits);
  };

  return {
    state() {
      const byStatus: Record<string, number> = {};
      const tasks = ctx.engine.list();
      for (const task of tasks) byStatus[task.status] = (byStatus[task.status] ?? 0) + 1;
      return {
        bill: ctx.bill.snapshot(),
        tasks: { total: tasks.length, by_status: byStatus },
        submits: ctx.stats.submits,
        in_flight: { current: ctx.engine.inFlight(), max: ctx.stats.inFlightMax },
        requests: ctx.stats.requestLog(),
        webhooks: ctx.webhooks.snapshot(),
        files: ctx.files.counts(),
      };
    },
    faults: () => cell.current,
    setFaults(patch) {
      apply(mergeFaults(cell.current, parseOrThrow(FaultsPatchSchema, patch, '')));
      return cell.current;
    },
    reset() {
      ctx.engine.clear();
      ctx.webhooks.reset();
      ctx.bill.clear();
      ctx.stats.reset();
      ctx.files.clear();
      ctx.blobs.clear();
      cell.current = initial.faults;
      ctx.limiter.configure(initial.faults.rateLimits);
      ctx.prng.reseed(initial.seed);
    },
  };
}
