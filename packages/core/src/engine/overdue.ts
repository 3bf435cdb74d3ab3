import type { JobRecord } from '../model/record.js';
import type { EngineContext } from './context.js';
import { DEFAULT_SECONDS_PER_TASK } from './services.js';

/** A task is overdue once it has taken this much longer than expected. */
export const OVERDUE_FACTOR = 1.5;

/**
 * When a task submitted at `from` is overdue: its expected provider time (the processing time per
 * output second observed on completed tasks of its kind, times its estimated seconds) times
 * OVERDUE_FACTOR. The reconciler polls it then, within RECONCILE_MIN_AFTER_MS and RECONCILE_AFTER_MS
 * of its last move (transition-2.lua), so a lost webhook is found by when it was due, not after a
 * flat five minutes. Undefined when the figure cannot be read (the flat delay then applies).
 */
export async function overdueAt(
  ctx: Pick<EngineContext, 'processing'>,
  record: Pick<JobRecord, 'input' | 'estimate_seconds' | 'duration_seconds'>,
  from: number,
): Promise<number | undefined> {
  const seconds = record.estimate_seconds ?? record.duration_seconds ?? DEFAULT_SECONDS_PER_TASK;
  try {
    return Math.round(from + (await ctx.processing.expectedMs(record.input, seconds)) * OVERDUE_FACTOR);
  } catch {
    return undefined;
  }
}

/**
 * The next look at a task still going after a poll: as long again as it is overdue already (so an
 * overdue task is polled at growing intervals, the most overdue least often), within the floor and
 * the ceiling.
 */
export function nextLookMs(
  record: Pick<JobRecord, 'overdue_ms'>,
  now: number,
  floorMs: number,
  ceilingMs: number,
): number {
  if (record.overdue_ms === undefined) return ceilingMs;
  return Math.min(ceilingMs, Math.max(floorMs, now - record.overdue_ms));
}
