import type { Resolution } from './app-input.js';

export type Prices = Record<Resolution, number>;

export const DEFAULT_PRICES: Prices = { '720p': 30_000, '1080p': 60_000 };

export interface BillLine {
  task_id: string;
  resolution: Resolution;
  seconds: number;
  micro_usd: number;
  completed_at: string;
}

export interface BillTotals {
  tasks: number;
  seconds: number;
  micro_usd: number;
}

export interface BillSnapshot {
  total_micro_usd: number;
  by_resolution: Record<Resolution, BillTotals>;
  tasks: BillLine[];
}

/**
 * micro-dollars for a duration: whole milliseconds × price per second / 1000, rounded half up, all
 * in integers so the oracle never carries a float error into a comparison.
 */
export function chargeMicroUsd(seconds: number, pricePerSecondMicro: number): number {
  const ms = Math.round(seconds * 1000);
  return Math.floor((ms * pricePerSecondMicro + 500) / 1000);
}

/** What the provider would bill: every completed task exactly once; failed and cancelled cost 0. */
export class Bill {
  private readonly lines = new Map<string, BillLine & { ms: number }>();

  constructor(private readonly prices: Prices) {}

  charge(taskId: string, resolution: Resolution, seconds: number, completedAt: string): void {
    if (this.lines.has(taskId)) return;
    const ms = Math.round(seconds * 1000);
    const microUsd = chargeMicroUsd(seconds, this.prices[resolution]);
    this.lines.set(taskId, {
      task_id: taskId,
      resolution,
      seconds: ms / 1000,
      micro_usd: microUsd,
      completed_at: completedAt,
      ms,
    });
  }

  clear(): void {
    this.lines.clear();
  }

  snapshot(): BillSnapshot {
    const totals: Record<Resolution, BillTotals & { ms: number }> = {
      '720p': { tasks: 0, seconds: 0, micro_usd: 0, ms: 0 },
      '1080p': { tasks: 0, seconds: 0, micro_usd: 0, ms: 0 },
    };
    let total = 0;
    const tasks: BillLine[] = [];
    for (const { ms, ...line } of this.lines.values()) {
      const bucket = totals[line.resolution];
      bucket.tasks += 1;
      bucket.ms += ms;
      bucket.micro_usd += line.micro_usd;
      total += line.micro_usd;
      tasks.push(line);
    }
    const byResolution = (resolution: Resolution): BillTotals => {
      const { ms, ...rest } = totals[resolution];
      return { ...rest, seconds: ms / 1000 };
    };
    return {
      total_micro_usd: total,
      by_resolution: { '720p': byResolution('720p'), '1080p': byResolution('1080p') },
      tasks,
    };
  }
}
