import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Counter, Gauge, type Registry } from 'prom-client';
import { readBacklog } from '../history/archiver.js';
import type { Keys } from '../infra/keys.js';
import type { Logger } from '../infra/logger.js';
import type { NotifyQueue, Queues } from '../model/catalog.js';
import { JobStore } from '../model/job-store.js';
import { Budgets } from '../money/budgets.js';
import { Ledger } from '../money/ledger.js';
import { ProviderGate, type ProviderLimits } from '../provider/provider-gate.js';
import { FairQueue } from '../scheduling/fair-queue.js';
import { BudgetParking } from '../scheduling/parking.js';
import { LedgerTotals } from './ledger-totals.js';

/** BullMQ states reported per queue; completed and failed are bounded by retention. */
export const QUEUE_STATES = [
  'waiting',
  'prioritized',
  'active',
  'delayed',
  'paused',
  'waiting-children',
  'completed',
  'failed',
] as const;

export interface ClusterCollectorOptions {
  /** A fail-fast (producer) connection: a scrape while Redis is down must not queue commands. */
  redis: Redis;
  keys: Keys;
  /** Queues on `redis` whose depths are reported (dispatch, settle and, if given, notify). */
  queues: Queues;
  notify?: NotifyQueue | undefined;
  providerLimits: ProviderLimits;
  logger: Logger;
  /** A read that takes longer is given up for this scrape. */
  timeoutMs?: number;
}

const registered = new WeakSet<Registry>();

/**
 * Gauges and counters read from Redis when Prometheus scrapes: the deployment's state, the same
 * whichever process reports it. Each read is O(queues + configured budgets + tenants waiting +
 * ledger days not yet seen), never a scan over jobs. A read that fails (Redis briefly down) or
 * times out is logged and counted in `recast_metrics_collect_errors_total`, and its series keep
 * their previous values: a scrape never fails because of it.
 */
export function registerClusterCollectors(registry: Registry, options: ClusterCollectorOptions): void {
  if (registered.has(registry)) throw new Error('cluster collectors are already registered on this registry');
  registered.add(registry);
  const { redis, keys, logger } = options;
  const timeoutMs = options.timeoutMs ?? 2_000;
  const registers = [registry];
  const failures = new Map<string, number>();
  const inProgress = new Set<Promise<unknown>>();

  /** Run a read for one scrape; concurrent callers (several series fed by one read) share it. */
  function reader<T>(collector: string, read: () => Promise<T>): () => Promise<T | undefined> {
    let pending: Promise<T | undefined> | undefined;
    return () => {
      if (pending) return pending;
      const started = withTimeout(read(), timeoutMs)
        .catch((err: Error) => {
          failures.set(collector, (failures.get(collector) ?? 0) + 1);
          logger.warn({ collector, err: err.message }, 'metrics read failed; series keep their last values');
          return undefined;
        })
        .finally(() => {
          pending = undefined;
          inProgress.delete(started);
        });
      pending = started;
      inProgress.add(started);
      return started;
    };
  }

  const queues: [string, Queue][] = [
    ['dispatch', options.queues.dispatch],
    ['settle', options.queues.settle],
  ];
  if (options.notify) queues.push(['notify', options.notify]);
  const readQueues = reader('queues', () =>
    Promise.all(queues.map(([, queue]) => queue.getJobCounts(...QUEUE_STATES))),
  );
  new Gauge({
    name: 'recast_queue_jobs',
    help: 'BullMQ jobs per queue and state.',
    labelNames: ['queue', 'state'],
    registers,
    async collect() {
      const counts = await readQueues();
      if (!counts) return;
      counts.forEach((c, i) => {
        for (const state of QUEUE_STATES) this.set({ queue: queues[i]![0], state }, c[state] ?? 0);
      });
    },
  });

  // Only the read methods of these are used: nothing is fed, parked or moved from here.
  const fair = new FairQueue(redis, keys, options.queues, { buffer: 0 });
  const store = new JobStore(redis, keys);
  const ledger = new Ledger(redis, keys);
  const parking = new BudgetParking(redis, keys, store, ledger, fair);
  const readLines = reader('fair', async () => {
    const depths = Object.values(await fair.depths());
    return { jobs: depths.reduce((a, b) => a + b, 0), tenants: depths.filter((n) => n > 0).length };
  });
  new Gauge({
    name: 'recast_fair_waiting_jobs',
    help: 'Jobs waiting in the tenants’ fair-share lines (not yet handed to BullMQ).',
    registers,
    async collect() {
      const lines = await readLines();
      if (lines) this.set(lines.jobs);
    },
  });
  new Gauge({
    name: 'recast_fair_waiting_tenants',
    help: 'Tenants with at least one job waiting in their fair-share line.',
    registers,
    async collect() {
      const lines = await readLines();
      if (lines) this.set(lines.tenants);
    },
  });
  const readParked = reader('parked', () => parking.parkedCount());
  new Gauge({
    name: 'recast_parked_jobs',
    help: 'Jobs parked in waiting_budget until money frees up.',
    registers,
    async collect() {
      const parked = await readParked();
      if (parked !== undefined) this.set(parked);
    },
  });

  const totals = new LedgerTotals(redis, keys);
  const readLedger = reader('ledger', () => totals.read());
  const ledgerCounter = (
    name: string,
    help: string,
    value: (t: { ms: number; jobs: number; microUsd: number }) => number,
  ) =>
    new Counter({
      name,
      help,
      labelNames: ['resolution'],
      registers,
      async collect() {
        const totals = await readLedger();
        if (!totals) return;
        this.reset();
        for (const [resolution, t] of totals) this.inc({ resolution }, value(t));
      },
    });
  ledgerCounter(
    'recast_spend_micro_usd_total',
    'Actual spend charged to the ledger since it began, by resolution (micro-dollars).',
    (t) => t.microUsd,
  );
  ledgerCounter(
    'recast_billed_seconds_total',
    'Output seconds billed since the ledger began, by resolution.',
    (t) => t.ms / 1000,
  );
  ledgerCounter(
    'recast_billed_jobs_total',
    'Billed tasks since the ledger began, by resolution.',
    (t) => t.jobs,
  );

  // Batch budgets are left out: batch ids grow without bound (GET /v1/budgets has them all).
  const budgets = new Budgets(redis, keys);
  const readBudgets = reader('budgets', () =>
    budgets.list(new Date(), (scope) => !scope.startsWith('batch:')),
  );
  const budgetGauge = (name: string, help: string, value: (b: BudgetFigures) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['scope', 'window'],
      registers,
      async collect() {
        const list = await readBudgets();
        if (!list) return;
        // A removed limit must disappear, not stay at its last value.
        this.reset();
        for (const b of list) this.set({ scope: b.scope, window: b.window }, value(b));
      },
    });
  budgetGauge(
    'recast_budget_utilisation_ratio',
    '(reserved + spent) / limit of each global and tenant budget in its current period (1 for a limit of 0).',
    (b) => (b.limit_micro_usd > 0 ? (b.reserved_micro_usd + b.spent_micro_usd) / b.limit_micro_usd : 1),
  );
  budgetGauge(
    'recast_budget_limit_micro_usd',
    'Limit of each global and tenant budget.',
    (b) => b.limit_micro_usd,
  );
  budgetGauge(
    'recast_budget_reserved_micro_usd',
    'Reserved (submitted, not settled) in the current period of each global and tenant budget.',
    (b) => b.reserved_micro_usd,
  );
  budgetGauge(
    'recast_budget_spent_micro_usd',
    'Spent in the current period of each global and tenant budget.',
    (b) => b.spent_micro_usd,
  );

  const gate = new ProviderGate(redis, keys, options.providerLimits);
  const readGate = reader('provider_gate', async () => {
    const [inFlight, submits] = await Promise.all([gate.inFlight(), gate.submitsInWindow()]);
    return { inFlight, submits };
  });
  const limits = options.providerLimits;
  new Gauge({
    name: 'recast_provider_in_flight',
    help: 'Tasks at the provider holding an in-flight slot, across all workers.',
    registers,
    async collect() {
      const g = await readGate();
      if (g) this.set(g.inFlight);
    },
  });
  new Gauge({
    name: 'recast_provider_in_flight_limit',
    help: 'PROVIDER_MAX_IN_FLIGHT (0 = no cap).',
    registers,
    collect() {
      this.set(limits.maxInFlight);
    },
  });
  new Gauge({
    name: 'recast_provider_submits_in_window',
    help: 'Submits counted in the current rate window (PROVIDER_RATE_WINDOW_MS), across all workers.',
    registers,
    async collect() {
      const g = await readGate();
      if (g) this.set(g.submits);
    },
  });
  new Gauge({
    name: 'recast_provider_submits_limit',
    help: 'PROVIDER_SUBMITS_PER_WINDOW (0 = no limit).',
    registers,
    collect() {
      this.set(limits.submitsPerWindow);
    },
  });
  // The archive: what waits to be written to PostgreSQL (it grows while the database is down).
  const readArchive = reader('archive', () => readBacklog(redis, keys));
  new Gauge({
    name: 'recast_archive_backlog',
    help: 'Records on the archive outboxes, not yet written to PostgreSQL, by kind (jobs, charges, batches).',
    labelNames: ['kind'],
    registers,
    async collect() {
      const backlog = await readArchive();
      if (!backlog) return;
      for (const kind of ['jobs', 'charges', 'batches'] as const) this.set({ kind }, backlog[kind]);
    },
  });
  new Gauge({
    name: 'recast_archive_oldest_seconds',
    help: 'Age of the oldest record waiting on an archive outbox (0 when they are empty).',
    registers,
    async collect() {
      const backlog = await readArchive();
      if (!backlog) return;
      this.set(backlog.oldest_ms === null ? 0 : Math.max(0, (Date.now() - backlog.oldest_ms) / 1000));
    },
  });
  // The last audit of the books against the provider's task list (the audit job scheduler).
  const readAudit = reader('audit', () =>
    redis.hmget(keys.auditLast(), 'unaccounted_micro_usd', 'difference_micro_usd', 'at_ms'),
  );
  const auditGauge = (name: string, help: string, index: number) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        const last = await readAudit();
        const value = last?.[index];
        if (value !== null && value !== undefined) this.set(Number(value));
      },
    });
  auditGauge(
    'recast_audit_unaccounted_micro_usd',
    'Micro-dollars the provider billed in the last audit window with no (or a smaller) charge in the ledger.',
    0,
  );
  auditGauge(
    'recast_audit_difference_micro_usd',
    'The ledger minus the provider over the last audit window.',
    1,
  );
  auditGauge('recast_audit_last_run_timestamp_ms', 'When the last audit finished (ms since the epoch).', 2);
  errorCounter(registry, failures, inProgress);
}

/**
 * Registered after every collector: prom-client starts all collects of a scrape together, in
 * registration order, so by the time this one runs the reads of this scrape are under way and it
 * waits for them, and a failure shows in the very scrape it happened in.
 */
function errorCounter(registry: Registry, failures: Map<string, number>, inProgress: Set<Promise<unknown>>) {
  new Counter({
    name: 'recast_metrics_collect_errors_total',
    help: 'Scrape-time reads that failed or timed out; their series keep their last values.',
    labelNames: ['collector'],
    registers: [registry],
    async collect() {
      await Promise.all(inProgress);
      this.reset();
      for (const [collector, n] of failures) this.inc({ collector }, n);
    },
  });
}

interface BudgetFigures {
  limit_micro_usd: number;
  reserved_micro_usd: number;
  spent_micro_usd: number;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
