import { afterAll, describe, expect, it } from 'vitest';
import { createKeys } from '../infra/keys.js';
import { testRedisClient, uniquePrefix } from '../testing/index.js';
import { CostLedger } from './cost-ledger.js';

const redis = testRedisClient();
afterAll(async () => {
  await redis.quit();
});

describe('CostLedger', () => {
  it('charges each job once and sums per day × resolution', async () => {
    const ledger = new CostLedger(redis, createKeys(uniquePrefix('ledger')));
    const base = { day: '2026-11-25', priceVersion: 'v1' };
    expect(
      await ledger.charge({ ...base, jobId: 'a', resolution: '720p', ms: 5000, microUsd: 150_000 }),
    ).toBe(true);
    expect(
      await ledger.charge({ ...base, jobId: 'a', resolution: '720p', ms: 5000, microUsd: 150_000 }),
    ).toBe(false);
    await ledger.charge({ ...base, jobId: 'b', resolution: '720p', ms: 2000, microUsd: 60_000 });
    await ledger.charge({ ...base, jobId: 'c', resolution: '1080p', ms: 7500, microUsd: 450_000 });
    const day = await ledger.day('2026-11-25');
    expect(day['720p']).toEqual({ ms: 7000, seconds: 7, count: 2, micro_usd: 210_000 });
    expect(day['1080p']).toEqual({ ms: 7500, seconds: 7.5, count: 1, micro_usd: 450_000 });
    expect(await ledger.days()).toEqual(['2026-11-25']);
    expect(await ledger.chargeOf('c')).toMatchObject({ resolution: '1080p', microUsd: 450_000 });
  });

  it('records a charge exactly once under concurrent duplicates', async () => {
    const ledger = new CostLedger(redis, createKeys(uniquePrefix('ledger')));
    const charge = {
      jobId: 'x',
      day: '2026-11-25',
      resolution: '1080p' as const,
      ms: 1000,
      microUsd: 60_000,
      priceVersion: 'v1',
    };
    const results = await Promise.all(Array.from({ length: 20 }, () => ledger.charge(charge)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await ledger.day('2026-11-25'))['1080p'].micro_usd).toBe(60_000);
  });

  it('refuses fractional money', async () => {
    const ledger = new CostLedger(redis, createKeys(uniquePrefix('ledger')));
    await expect(
      ledger.charge({
        jobId: 'y',
        day: '2026-11-25',
        resolution: '720p',
        ms: 1,
        microUsd: 0.5,
        priceVersion: 'v1',
      }),
    ).rejects.toThrow(/integer/);
  });
});
