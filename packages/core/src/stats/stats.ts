import type { Redis } from 'ioredis';
import type { Forecaster } from '../forecast/forecaster.js';
import { readBacklog } from '../history/archiver.js';
import type { Keys } from '../infra/keys.js';
import { JOB_STATES, type JobState } from '../model/states.js';
import type { BudgetStatus, Budgets } from '../money/budgets.js';
import { type Ledger, utcDay } from '../money/ledger.js';
import { microUsdToUsd } from '../money/price-table.js';
import type { ProviderGate } from '../provider/provider-gate.js';

export interface StatsDeps {
  redis: Redis;
  keys: Keys;
  budgets: Budgets;
  ledger: Ledger;
  gate: Pick<ProviderGate, 'inFlight' | 'submitsInWindow' | 'limits'>;
  forecaster: Pick<Forecaster, 'backlog' | 'figures'>;
}

/**
 * What a dashboard polls, from a fixed number of reads: jobs by state (the listing indexes' sizes),
 * the pressure on the provider (deployment-wide: in flight vs cap, submits in the current window),
 * the budgets that apply (global and the tenant's own; every one for an admin view of all tenants),
 * today's spend by resolution (the ledger's per-day totals), and the archive's backlog. Jobs by
 * state count what Redis holds: live jobs, and finished ones until REDIS_JOB_RETENTION_MS after
 * they were archived. And the ETA of the backlog, with the processing figures it is made of.
 */
export async function statsOf(deps: StatsDeps, tenant: string | undefined, now = new Date()) {
  const pipeline = deps.redis.pipeline();
  for (const state of JOB_STATES) pipeline.zcard(deps.keys.jobIndex(tenant, state));
  const [counts, inFlight, submits, budgets, today, backlog] = await Promise.all([
    pipeline.exec(),
    deps.gate.inFlight(),
    deps.gate.submitsInWindow(),
    deps.budgets.list(
      now,
      (scope) => tenant === undefined || scope === 'global' || scope === `tenant:${tenant}`,
    ),
    deps.ledger.dayTotals(utcDay(now), tenant),
    readBacklog(deps.redis, deps.keys),
  ]);
  const byState = Object.fromEntries(
    JOB_STATES.map((state, i) => [state, Number(counts?.[i]?.[1] ?? 0)]),
  ) as Record<JobState, number>;
  const [eta, processing] = await Promise.all([
    deps.forecaster.backlog(tenant, byState.waiting_budget),
    deps.forecaster.figures(),
  ]);
  const spend = Object.entries(today)
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([resolution, t]) => ({
      resolution,
      seconds: t.ms / 1000,
      jobs: t.jobs,
      micro_usd: t.micro_usd,
      usd: microUsdToUsd(t.micro_usd),
    }));
  const spentMicroUsd = spend.reduce((sum, r) => sum + r.micro_usd, 0);
  const { limits } = deps.gate;
  return {
    object: 'stats' as const,
    tenant: tenant ?? null,
    jobs: { by_state: byState, total: Object.values(byState).reduce((a, b) => a + b, 0) },
    provider: {
      in_flight: inFlight,
      max_in_flight: limits.maxInFlight === 0 ? null : limits.maxInFlight,
      submits_in_window: submits,
      submits_per_window: limits.submitsPerWindow === 0 ? null : limits.submitsPerWindow,
      window_ms: limits.windowMs,
    },
    /** When everything in line now (the tenant's, or the deployment's) should be done, or why it cannot move. */
    eta,
    /** Processing time per output second by resolution and turbo (`all`: every task), as ETAs use it. */
    processing,
    budgets: budgets.map((b: BudgetStatus) => ({
      scope: b.scope,
      window: b.window,
      period: b.period,
      limit_micro_usd: b.limit_micro_usd,
      used_micro_usd: b.reserved_micro_usd + b.spent_micro_usd,
      reserved_micro_usd: b.reserved_micro_usd,
      spent_micro_usd: b.spent_micro_usd,
      utilisation:
        b.limit_micro_usd === 0 ? 1 : (b.reserved_micro_usd + b.spent_micro_usd) / b.limit_micro_usd,
    })),
    spend_today: {
      day: utcDay(now),
      by_resolution: spend,
      total_micro_usd: spentMicroUsd,
      total_usd: microUsdToUsd(spentMicroUsd),
    },
    /** What waits to be written to PostgreSQL (deployment-wide): it grows while the database is down. */
    archive: {
      backlog: { jobs: backlog.jobs, charges: backlog.charges, batches: backlog.batches },
      oldest_queued_seconds:
        backlog.oldest_ms === null
          ? null
          : Math.max(0, Math.round((now.getTime() - backlog.oldest_ms) / 1000)),
    },
  };
}
export type Stats = Awaited<ReturnType<typeof statsOf>>;
