import { afterAll, describe, expect, it } from 'vitest';
import { createKeys } from '../infra/keys.js';
import { testRedisClient, uniquePrefix } from '../testing/index.js';
import { ProcessingTimes } from './processing.js';

const clients = [testRedisClient(), testRedisClient()];
afterAll(async () => {
  for (const c of clients) await c.quit();
});

function times() {
  const keys = createKeys(uniquePrefix('processing'));
  const options = { defaultMsPerSecond: 15_000, defaultSecondsPerTask: 10, cacheMs: 0 };
  return clients.map((c) => new ProcessingTimes(c, keys, options)) as [ProcessingTimes, ProcessingTimes];
}

describe('ProcessingTimes', () => {
  it('answers the documented default until a task of any kind completed', async () => {
    const [p] = times();
    expect(await p.figure({ resolution: '1080p' })).toEqual({
      kind: '1080p|std',
      ms_per_output_second: 15_000,
      output_seconds_per_task: 10,
      turnaround_ms: 0,
      tasks: 0,
      source: 'default',
    });
    expect(await p.expectedMs({ resolution: '720p' }, 4)).toBe(60_000);
  });

  it('learns per resolution and turbo from every worker, a mean at first and then a moving one', async () => {
    const [a, b] = times();
    await a.observe({ resolution: '720p' }, 10_000, 5, 10_300); // 2,000 ms per output second
    await b.observe({ resolution: '720p' }, 12_000, 3, 12_100); // 4,000
    expect(await a.figure({ resolution: '720p' })).toMatchObject({
      ms_per_output_second: 3_000,
      output_seconds_per_task: 4,
      turnaround_ms: 200,
      tasks: 2,
      source: 'observed',
    });
    // Other kinds fall back: the same resolution's other kind, then every task's figure.
    expect(await a.figure({ resolution: '720p', turbo: true })).toMatchObject({
      ms_per_output_second: 3_000,
    });
    await b.observe({ resolution: '1080p', turbo: true }, 6_000, 6);
    expect(await a.figure({ resolution: '1080p', turbo: true })).toMatchObject({
      ms_per_output_second: 1_000,
      tasks: 1,
    });
    expect(await a.figure({ resolution: '480p' })).toMatchObject({ tasks: 3, source: 'observed' });
    // Past ten tasks the newest weighs a tenth: a drift is followed, one odd task does not stick.
    for (let i = 0; i < 30; i++) await a.observe({ resolution: '720p' }, 5_000, 5);
    const settled = await a.figure({ resolution: '720p' });
    expect(settled.ms_per_output_second).toBeGreaterThan(1_000);
    expect(settled.ms_per_output_second).toBeLessThan(1_100);
    await a.observe({ resolution: '720p' }, 50_000, 5);
    expect((await a.figure({ resolution: '720p' })).ms_per_output_second).toBeLessThan(2_100);
    // Nothing that cannot be a measure is folded in.
    await a.observe({ resolution: '720p' }, -5, 5);
    await a.observe({ resolution: '720p' }, 1000, 0);
    expect((await a.figure({ resolution: '720p' })).tasks).toBe(33);
    expect((await a.list()).map((f) => f.kind)).toEqual(['1080p|turbo', '720p|std', 'all']);
  });
});
