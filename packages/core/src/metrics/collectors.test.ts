import { afterAll, describe, expect, it } from 'vitest';
import { createKeys } from '../infra/keys.js';
import { createRedis, waitForRedis } from '../infra/redis.js';
import { createQueues } from '../model/catalog.js';
import { JobStore } from '../model/job-store.js';
import { Budgets } from '../money/budgets.js';
import { Ledger, utcDay } from '../money/ledger.js';
import { ProviderGate, type ProviderLimits } from '../provider/provider-gate.js';
import { FairQueue } from '../scheduling/fair-queue.js';
import { BudgetParking } from '../scheduling/parking.js';
import { queuedJobRecord, testLogger, testRedisUrl, uniquePrefix } from '../testing/index.js';
import { registerClusterCollectors } from './collectors.js';
import { LedgerTotals } from './ledger-totals.js';
import { createMetricsRegistry } from './registry.js';
import { MetricsScrape } from './scrape.js';

const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

const limits: ProviderLimits = {
  submitsPerWindow: 50,
  windowMs: 60_000,
  maxInFlight: 7,
  pendingHoldMs: 1000,
};

/** Collectors on a fresh prefix, over a fail-fast connection as the worker gives them. */
async function setup(url = testRedisUrl()) {
  const logger = testLogger();
  const redis = createRedis({ target: url, role: 'producer', logger, name: 'metrics-test' });
  const keys = createKeys(uniquePrefix('metrics'));
  const queues = createQueues(redis, keys);
  // The connection logs its own errors; a queue without a listener would print them again.
  for (const queue of [queues.dispatch, queues.settle]) queue.on('error', () => undefined);
  closers.push(
    () => redis.quit().catch(() => redis.disconnect()),
    () => queues.close().catch(() => undefined),
  );
  const registry = createMetricsRegistry({ process: 'test', defaultMetrics: false });
  registerClusterCollectors(registry, {
    redis,
    keys,
    queues,
    providerLimits: limits,
    logger,
    timeoutMs: 1000,
  });
  const scrape = async () => new MetricsScrape(await registry.metrics());
  return { redis, keys, queues, registry, scrape };
}

const charge = (jobId: string, day: string, resolution: '720p' | '1080p', ms: number, microUsd: number) => ({
  jobId,
  tenant: 'acme',
  day,
  resolution,
  ms,
  microUsd,
  priceVersion: 'v1',
});

describe('cluster collectors (real Redis)', () => {
  it('report queue depths, lines, parking, spend, budgets and the provider gate as they change', async () => {
    const { redis, keys, queues, scrape } = await setup();
    await waitForRedis(redis);
    const before = await scrape();
    for (const state of ['waiting', 'active', 'delayed', 'completed', 'failed'])
      for (const queue of ['dispatch', 'settle'])
        expect(before.find('recast_queue_jobs', { queue, state })).toHaveLength(1);
    expect(before.value('recast_queue_jobs')).toBe(0);
    expect(before.value('recast_provider_in_flight')).toBe(0);
    expect(before.value('recast_provider_in_flight_limit')).toBe(7);
    expect(before.value('recast_provider_submits_limit')).toBe(50);
    expect(before.find('recast_spend_micro_usd_total')).toHaveLength(0);
    expect(before.find('recast_budget_utilisation_ratio')).toHaveLength(0);
    expect(before.find('recast_queue_jobs')[0]?.labels.process).toBe('test');

    await queues.dispatch.add('job.dispatch', { jobId: 'job_a' });
    await queues.settle.add('job.settle', { jobId: 'job_b', taskId: 't', recheck: 0 }, { delay: 60_000 });
    const store = new JobStore(redis, keys);
    const fair = new FairQueue(redis, keys, queues, { buffer: 1 });
    const multi = redis.multi();
    fair.pushIn(multi, 'job_l1', 'acme');
    fair.pushIn(multi, 'job_l2', 'acme');
    fair.pushIn(multi, 'job_l3', 'zeta');
    await multi.exec();
    const ledger = new Ledger(redis, keys);
    const parked = queuedJobRecord({ tenant: 'acme' });
    await store.create(parked);
    expect(await new BudgetParking(redis, keys, store, ledger, fair).park(parked, 'global|daily')).toBe(true);

    const today = utcDay(new Date());
    await ledger.charge(charge('job_c1', today, '720p', 2000, 60_000));
    await ledger.charge(charge('job_c2', today, '1080p', 5000, 300_000));
    await ledger.charge(charge('job_c3', '2025-01-01', '720p', 1500, 45_000));
    // A charge settled twice counts once: the ledger is the source, not an event count.
    await ledger.charge(charge('job_c1', today, '720p', 2000, 60_000));

    const budgets = new Budgets(redis, keys);
    await budgets.setLimit('global', 'daily', 1_000_000);
    await budgets.setLimit('tenant:acme', 'monthly', 2_000_000);
    await budgets.setLimit('batch:b_1', 'daily', 10);
    await ledger.reserve({ jobId: 'job_r', tenant: 'acme' }, 100_000);

    const gate = new ProviderGate(redis, keys, limits);
    expect((await gate.admit('job_g')).ok).toBe(true);

    const after = await scrape();
    expect(after.value('recast_queue_jobs', { queue: 'dispatch', state: 'waiting' })).toBe(1);
    expect(after.value('recast_queue_jobs', { queue: 'settle', state: 'delayed' })).toBe(1);
    expect(after.value('recast_fair_waiting_jobs')).toBe(3);
    expect(after.value('recast_fair_waiting_tenants')).toBe(2);
    expect(after.value('recast_parked_jobs')).toBe(1);

    expect(after.value('recast_spend_micro_usd_total', { resolution: '720p' })).toBe(105_000);
    expect(after.value('recast_spend_micro_usd_total', { resolution: '1080p' })).toBe(300_000);
    expect(after.value('recast_billed_seconds_total', { resolution: '720p' })).toBe(3.5);
    expect(after.value('recast_billed_seconds_total', { resolution: '1080p' })).toBe(5);
    expect(after.value('recast_billed_jobs_total', { resolution: '720p' })).toBe(2);

    // Global daily: 405,000 spent now (a charge with no reservation counts in the current
    // periods, whatever its report day) + 100,000 reserved, of 1,000,000.
    const global = { scope: 'global', window: 'daily' };
    expect(after.value('recast_budget_spent_micro_usd', global)).toBe(405_000);
    expect(after.value('recast_budget_reserved_micro_usd', global)).toBe(100_000);
    expect(after.value('recast_budget_limit_micro_usd', global)).toBe(1_000_000);
    expect(after.value('recast_budget_utilisation_ratio', global)).toBeCloseTo(0.505, 10);
    expect(
      after.value('recast_budget_utilisation_ratio', { scope: 'tenant:acme', window: 'monthly' }),
    ).toBeCloseTo(0.2525, 10);
    // Batch budgets are not series (batch ids are unbounded).
    expect(after.find('recast_budget_utilisation_ratio', { scope: 'batch:b_1' })).toHaveLength(0);

    expect(after.value('recast_provider_in_flight')).toBe(1);
    expect(after.value('recast_provider_submits_in_window')).toBe(1);

    // A removed limit disappears; a released slot shows.
    await budgets.setLimit('global', 'daily', null);
    await gate.release('job_g');
    const later = await scrape();
    expect(later.find('recast_budget_utilisation_ratio', global)).toHaveLength(0);
    expect(later.value('recast_provider_in_flight')).toBe(0);
    expect(later.value('recast_metrics_collect_errors_total')).toBe(0);
  });

  it('keeps the last values and counts an error when Redis stops answering, and never throws', async () => {
    const { redis, keys, scrape } = await setup();
    await waitForRedis(redis);
    await new Ledger(redis, keys).charge(charge('job_x', utcDay(new Date()), '720p', 1000, 30_000));
    expect((await scrape()).value('recast_spend_micro_usd_total', { resolution: '720p' })).toBe(30_000);

    redis.disconnect();
    const down = await scrape();
    expect(down.value('recast_spend_micro_usd_total', { resolution: '720p' })).toBe(30_000);
    for (const collector of ['queues', 'fair', 'parked', 'ledger', 'budgets', 'provider_gate'])
      expect(down.value('recast_metrics_collect_errors_total', { collector })).toBe(1);
  });

  it('answers a scrape with no Redis at all (nothing listening)', async () => {
    const { scrape } = await setup('redis://127.0.0.1:1');
    const page = await scrape();
    expect(page.value('recast_metrics_collect_errors_total', { collector: 'ledger' })).toBe(1);
    expect(page.find('recast_queue_jobs')).toHaveLength(0);
    expect(page.value('recast_provider_in_flight_limit')).toBe(7);
  });
});

describe('LedgerTotals', () => {
  it('reads a closed day once, and today and yesterday on every read', async () => {
    const { redis, keys } = await setup();
    await waitForRedis(redis);
    const ledger = new Ledger(redis, keys);
    const now = new Date('2026-03-10T12:00:00Z');
    await ledger.charge(charge('job_1', '2026-03-01', '720p', 1000, 30_000));
    await ledger.charge(charge('job_2', '2026-03-09', '720p', 1000, 30_000));
    await ledger.charge(charge('job_3', '2026-03-10', '1080p', 1000, 60_000));
    const totals = new LedgerTotals(redis, keys);
    expect(Object.fromEntries(await totals.read(now))).toEqual({
      '720p': { ms: 2000, jobs: 2, microUsd: 60_000 },
      '1080p': { ms: 1000, jobs: 1, microUsd: 60_000 },
    });
    // Late writes: to yesterday (seen) and to a closed day (remembered from the first read).
    await ledger.charge(charge('job_4', '2026-03-09', '720p', 1000, 30_000));
    await redis.hincrby(keys.ledgerDay('2026-03-01'), '720p|acme|-|micro_usd', 1);
    expect((await totals.read(now)).get('720p')).toEqual({ ms: 3000, jobs: 3, microUsd: 90_000 });
    // A new process reads everything afresh.
    expect((await new LedgerTotals(redis, keys).read(now)).get('720p')?.microUsd).toBe(90_001);
  });
});
