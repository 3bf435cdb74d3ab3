import type { Redis } from 'ioredis';
import type { Keys } from '../infra/keys.js';
import {
  BUDGET_WINDOWS,
  type BudgetScope,
  type BudgetWindow,
  isBudgetScope,
  limitField,
  periodEnd,
  periodOf,
} from './scopes.js';

export interface BudgetUsage {
  reserved_micro_usd: number;
  spent_micro_usd: number;
}

export interface BudgetStatus extends BudgetUsage {
  scope: BudgetScope;
  window: BudgetWindow;
  limit_micro_usd: number;
  period: string;
  period_ends_at: string | null;
  available_micro_usd: number;
}

/** Budget limits (set by operators) and what each scope has reserved and spent per period. */
export class Budgets {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Set (or with null remove) the limit of a scope for a window; wakes parked jobs. */
  async setLimit(scope: BudgetScope, window: BudgetWindow, microUsd: number | null): Promise<void> {
    const multi = this.redis.multi();
    if (microUsd === null) multi.hdel(this.keys.budgetLimits(), limitField(scope, window));
    else multi.hset(this.keys.budgetLimits(), limitField(scope, window), String(microUsd));
    await multi.exec();
    // A raised (or removed) limit can let parked jobs go; a lowered one changes nothing already held.
    await this.redis.set(this.keys.unparkWake(), '1');
  }

  async usage(scope: BudgetScope, window: BudgetWindow, at = new Date()): Promise<BudgetUsage> {
    const [reserved, spent] = await this.redis.hmget(
      this.keys.budgetUsage(scope, periodOf(window, at)),
      'reserved',
      'spent',
    );
    return { reserved_micro_usd: Number(reserved ?? 0), spent_micro_usd: Number(spent ?? 0) };
  }

  /** Every configured limit with the usage of its current period, ordered by scope then window. */
  async list(at = new Date(), filter?: (scope: BudgetScope) => boolean): Promise<BudgetStatus[]> {
    const limits = await this.redis.hgetall(this.keys.budgetLimits());
    const entries = Object.entries(limits)
      .map(([field, limit]) => {
        const [scope, window] = field.split('|') as [string, BudgetWindow];
        return { scope, window, limit: Number(limit) };
      })
      .filter(
        (e): e is { scope: BudgetScope; window: BudgetWindow; limit: number } =>
          isBudgetScope(e.scope) && BUDGET_WINDOWS.includes(e.window) && (!filter || filter(e.scope)),
      )
      .sort((a, b) =>
        a.scope === b.scope
          ? BUDGET_WINDOWS.indexOf(a.window) - BUDGET_WINDOWS.indexOf(b.window)
          : a.scope < b.scope
            ? -1
            : 1,
      );
    const pipeline = this.redis.pipeline();
    for (const e of entries)
      pipeline.hmget(this.keys.budgetUsage(e.scope, periodOf(e.window, at)), 'reserved', 'spent');
    const replies = entries.length ? ((await pipeline.exec()) ?? []) : [];
    return entries.map((e, i) => {
      const [reserved, spent] = (replies[i]?.[1] as (string | null)[] | undefined) ?? [];
      const usage = { reserved_micro_usd: Number(reserved ?? 0), spent_micro_usd: Number(spent ?? 0) };
      return {
        scope: e.scope,
        window: e.window,
        limit_micro_usd: e.limit,
        period: periodOf(e.window, at),
        period_ends_at: periodEnd(e.window, at)?.toISOString() ?? null,
        ...usage,
        available_micro_usd: Math.max(0, e.limit - usage.reserved_micro_usd - usage.spent_micro_usd),
      };
    });
  }
}
