import { afterAll, describe, expect, it } from 'vitest';
import { createKeys } from '../infra/keys.js';
import { testRedisClient, uniquePrefix } from '../testing/index.js';
import { BillingChecks } from './billing-checks.js';
import { Budgets } from './budgets.js';
import { costReport } from './costs.js';
import { Ledger } from './ledger.js';

const redis = testRedisClient();
afterAll(async () => {
  await redis.quit();
});

function fresh() {
  const keys = createKeys(uniquePrefix('ledger'));
  return { keys, ledger: new Ledger(redis, keys), budgets: new Budgets(redis, keys) };
}

const at = new Date('2026-11-25T12:00:00Z');
const charge = (jobId: string, extra: Partial<Parameters<Ledger['charge']>[0]> = {}) => ({
  jobId,
  tenant: 'acme',
  day: '2026-11-25',
  resolution: '720p' as const,
  ms: 5000,
  microUsd: 150_000,
  priceVersion: 'v1',
  ...extra,
});

/** No second task of any job was billed in these reports. */
const NO_DUPLICATES = { duplicates: 0, duplicate_micro_usd: 0 };

describe('Ledger: charges', () => {
  it('charges each job once and reports by day, resolution, tenant and batch', async () => {
    const { ledger, keys } = fresh();
    expect(await ledger.charge(charge('a'), at)).toBe(true);
    expect(await ledger.charge(charge('a'), at)).toBe(false);
    await ledger.charge(charge('b', { ms: 2000, microUsd: 60_000, batch_id: 'bat_1' }), at);
    await ledger.charge(
      charge('c', { resolution: '1080p', ms: 7500, microUsd: 450_000, tenant: 'zeta' }),
      at,
    );
    await ledger.charge(charge('d', { day: '2026-11-26', ms: 1000, microUsd: 30_000 }), at);

    const byRes = await costReport(redis, keys, {
      from: '2026-11-25',
      to: '2026-11-26',
      groupBy: ['resolution'],
    });
    expect(byRes.rows).toEqual([
      {
        resolution: '1080p',
        seconds: 7.5,
        jobs: 1,
        micro_usd: 450_000,
        usd: '0.450000',
        billing_mismatches: 0,
        ...NO_DUPLICATES,
      },
      {
        resolution: '720p',
        seconds: 8,
        jobs: 3,
        micro_usd: 240_000,
        usd: '0.240000',
        billing_mismatches: 0,
        ...NO_DUPLICATES,
      },
    ]);
    expect(byRes.total).toEqual({
      seconds: 15.5,
      jobs: 4,
      micro_usd: 690_000,
      usd: '0.690000',
      billing_mismatches: 0,
      ...NO_DUPLICATES,
    });

    const byDayTenant = await costReport(redis, keys, {
      from: '2026-11-25',
      to: '2026-11-25',
      groupBy: ['tenant', 'day'],
    });
    expect(byDayTenant.rows.map((r) => [r.day, r.tenant, r.micro_usd])).toEqual([
      ['2026-11-25', 'acme', 210_000],
      ['2026-11-25', 'zeta', 450_000],
    ]);
    const batch = await costReport(redis, keys, {
      from: '2026-11-01',
      to: '2026-11-30',
      groupBy: ['batch'],
      batch: 'bat_1',
    });
    expect(batch.rows).toEqual([
      {
        batch: 'bat_1',
        seconds: 2,
        jobs: 1,
        micro_usd: 60_000,
        usd: '0.060000',
        billing_mismatches: 0,
        ...NO_DUPLICATES,
      },
    ]);
    expect(await ledger.chargeOf('c')).toMatchObject({
      tenant: 'zeta',
      resolution: '1080p',
      microUsd: 450_000,
    });
  });

  it('counts a billing mismatch once per charge, beside its spend in the report', async () => {
    const { ledger, keys } = fresh();
    const checks = new BillingChecks(redis, keys);
    await ledger.charge(charge('m1', { batch_id: 'bat_9' }), at);
    await ledger.charge(charge('m2', { tenant: 'zeta' }), at);
    const entry = {
      chargeId: 'm1',
      day: '2026-11-25',
      resolution: '720p' as const,
      tenant: 'acme',
      batch_id: 'bat_9',
    };
    const counted = await Promise.all([checks.recordMismatch(entry), checks.recordMismatch(entry)]);
    expect(counted.sort()).toEqual([false, true]);
    const report = await costReport(redis, keys, {
      from: '2026-11-25',
      to: '2026-11-25',
      groupBy: ['tenant'],
    });
    expect(report.rows.map((r) => [r.tenant, r.jobs, r.billing_mismatches])).toEqual([
      ['acme', 1, 1],
      ['zeta', 1, 0],
    ]);
    expect(report.total.billing_mismatches).toBe(1);
    const batch = await costReport(redis, keys, {
      from: '2026-11-25',
      to: '2026-11-25',
      groupBy: [],
      batch: 'bat_9',
    });
    expect(batch.total).toMatchObject({ jobs: 1, billing_mismatches: 1 });
  });

  it('records a charge exactly once under concurrent duplicates', async () => {
    const { ledger, keys } = fresh();
    const results = await Promise.all(Array.from({ length: 20 }, () => ledger.charge(charge('x'), at)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const report = await costReport(redis, keys, { from: '2026-11-25', to: '2026-11-25', groupBy: [] });
    expect(report.total.micro_usd).toBe(150_000);
  });

  it('refuses fractional money and bad report ranges', async () => {
    const { ledger, keys } = fresh();
    await expect(ledger.charge(charge('y', { microUsd: 0.5 }), at)).rejects.toThrow(/integer/);
    await expect(
      costReport(redis, keys, { from: '2026-11-30', to: '2026-11-01', groupBy: [] }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', issues: [{ path: 'to' }] });
    await expect(
      costReport(redis, keys, { from: '2026-02-30', to: '2026-03-01', groupBy: [] }),
    ).rejects.toMatchObject({ issues: [{ path: 'from' }] });
  });
});

describe('Ledger: budgets', () => {
  it('reserves across every scope and window, all or nothing', async () => {
    const { ledger, budgets } = fresh();
    await budgets.setLimit('tenant:acme', 'daily', 100_000);
    await budgets.setLimit('global', 'monthly', 1_000_000);
    const owner = (jobId: string, tenant = 'acme') => ({ jobId, tenant });

    expect(await ledger.reserve(owner('j1'), 60_000, at)).toEqual({ ok: true, held: false });
    expect(await ledger.reserve(owner('j1'), 60_000, at)).toEqual({ ok: true, held: true });
    expect(await ledger.reserve(owner('j2'), 60_000, at)).toEqual({
      ok: false,
      scope: 'tenant:acme',
      window: 'daily',
      limitMicroUsd: 100_000,
      usedMicroUsd: 60_000,
    });
    // Refused means nothing was written anywhere: the global scope did not move either.
    expect(await budgets.usage('global', 'monthly', at)).toEqual({
      reserved_micro_usd: 60_000,
      spent_micro_usd: 0,
    });
    // Another tenant is only bound by the global limit.
    expect((await ledger.reserve(owner('j3', 'zeta'), 900_000, at)).ok).toBe(true);
    expect(await ledger.reserve(owner('j4', 'zeta'), 60_000, at)).toMatchObject({
      ok: false,
      scope: 'global',
    });
  });

  it('moves a reservation to spent at the actual cost, in the periods it was reserved in', async () => {
    const { ledger, budgets } = fresh();
    await budgets.setLimit('tenant:acme', 'daily', 200_000);
    const owner = { jobId: 'j1', tenant: 'acme' };
    await ledger.reserve(owner, 90_000, at);
    // Settled the next day, at a different actual cost than the estimate.
    const nextDay = new Date('2026-11-26T00:00:05Z');
    await ledger.charge({ ...charge('j1'), microUsd: 75_000, day: '2026-11-26' }, nextDay);
    expect(await budgets.usage('tenant:acme', 'daily', at)).toEqual({
      reserved_micro_usd: 0,
      spent_micro_usd: 75_000,
    });
    expect(await budgets.usage('tenant:acme', 'daily', nextDay)).toEqual({
      reserved_micro_usd: 0,
      spent_micro_usd: 0,
    });
    expect(await ledger.reservationOf('j1')).toBeUndefined();
  });

  it('charges in full when the reservation changes between its read and its script', async () => {
    const { ledger, budgets, keys } = fresh();
    await budgets.setLimit('tenant:acme', 'daily', 500_000);
    await ledger.reserve({ jobId: 'j1', tenant: 'acme' }, 90_000, at);
    const usageKeys = ((await redis.hget(keys.reservations(), 'j1')) ?? '').split(' ').slice(1);
    expect(usageKeys.length).toBeGreaterThan(0);
    // On the same connection, between the charge's read of the reservation and its script (sent
    // only once the read is answered): the reservation is released and made again, smaller.
    const charged = ledger.charge({ ...charge('j1'), taskId: 'task-1' }, at);
    const change = redis.multi().hdel(keys.reservations(), 'j1');
    for (const key of usageKeys) change.hincrby(key, 'reserved', -30_000);
    void change.hset(keys.reservations(), 'j1', ['60000', ...usageKeys].join(' ')).exec();
    expect(await charged).toBe(true);
    // The first script saw the change and wrote nothing; the retry charged and moved the new one.
    expect(await budgets.usage('tenant:acme', 'daily', at)).toEqual({
      reserved_micro_usd: 0,
      spent_micro_usd: 150_000,
    });
    expect(await ledger.reservationOf('j1')).toBeUndefined();
    expect(await ledger.charge({ ...charge('j1'), taskId: 'task-1' }, at)).toBe(false);
  });

  it('releases an unbilled job once, and lists limits with their usage', async () => {
    const { ledger, budgets } = fresh();
    await budgets.setLimit('tenant:acme', 'lifetime', 500_000);
    await ledger.reserve({ jobId: 'j1', tenant: 'acme' }, 120_000, at);
    expect(await ledger.release({ jobId: 'j1', tenant: 'acme' }, at)).toBe(true);
    expect(await ledger.release({ jobId: 'j1', tenant: 'acme' }, at)).toBe(false);
    const [row] = await budgets.list(at);
    expect(row).toMatchObject({
      scope: 'tenant:acme',
      window: 'lifetime',
      limit_micro_usd: 500_000,
      reserved_micro_usd: 0,
      spent_micro_usd: 0,
      available_micro_usd: 500_000,
      period: 'lifetime',
      period_ends_at: null,
    });
  });

  it('never lets reserved + spent pass the limit under concurrent reservations', async () => {
    const { ledger, budgets } = fresh();
    await budgets.setLimit('global', 'daily', 1_000_000);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        ledger.reserve({ jobId: `r${i}`, tenant: `t${i % 7}` }, 30_000, at),
      ),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(33);
    const usage = await budgets.usage('global', 'daily', at);
    expect(usage.reserved_micro_usd).toBe(990_000);
  });
});
