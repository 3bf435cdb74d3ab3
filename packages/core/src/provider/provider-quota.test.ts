import { afterAll, describe, expect, it } from 'vitest';
import { createKeys } from '../infra/keys.js';
import { testRedisClient, uniquePrefix } from '../testing/index.js';
import { InferenceError } from './inference-error.js';
import { ProviderQuota, type QuotaLimits, quotaAdmission } from './provider-quota.js';

const clients = Array.from({ length: 3 }, () => testRedisClient());
afterAll(async () => {
  for (const c of clients) await c.quit();
});

/** One quota as each of `n` processes sees it (own connection, same keys). */
function quotas(limits: Partial<QuotaLimits>, n = 1) {
  const keys = createKeys(uniquePrefix('quota'));
  const full: QuotaLimits = { perWindow: 3, windowMs: 400, pendingHoldMs: 5000, maxWaitMs: 5000, ...limits };
  return clients.slice(0, n).map((c) => new ProviderQuota(c, keys, 'reads', full));
}

describe('ProviderQuota', () => {
  it('never lets more than its limit start in any window, across processes', async () => {
    const all = quotas({ perWindow: 3, windowMs: 400 }, 3);
    const started: number[] = [];
    await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const turn = await all[i % 3]!.take();
        started.push(Date.now());
        // A short request, then its end: it counts a window from here.
        await new Promise((r) => setTimeout(r, 10));
        await turn?.end(undefined);
      }),
    );
    started.sort((a, b) => a - b);
    for (let i = 3; i < started.length; i++)
      expect(started[i]! - started[i - 3]!).toBeGreaterThanOrEqual(390);
    // Twelve at three per 400 ms: at least three full windows passed.
    expect(started.at(-1)! - started[0]!).toBeGreaterThanOrEqual(3 * 390);
  });

  it('keeps a fifth of the window for settle reads: background polls stop at the rest', async () => {
    const [a, b] = quotas({ perWindow: 10, windowMs: 60_000, maxWaitMs: 100 }, 2) as [
      ProviderQuota,
      ProviderQuota,
    ];
    // Reconcile polls across two processes: eight of the ten places, then no more.
    for (let i = 0; i < 8; i++) await (await (i % 2 ? a : b).take('get_status', true))?.end(undefined);
    const refused = await a.take('get_status', true).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'PROVIDER_RATE_LIMITED' });
    expect((refused as InferenceError).retryAfterMs).toBeGreaterThan(50_000);
    // A settle read (a task's end, the money) still finds room, twice.
    for (let i = 0; i < 2; i++) await (await b.take('get_task'))?.end(undefined);
    expect(await a.inWindow()).toBe(10);
    await expect(b.take('get_task')).rejects.toMatchObject({ code: 'PROVIDER_RATE_LIMITED' });
    // The admission decides by endpoint.
    const admit = quotaAdmission({ reads: quotas({ perWindow: 5, windowMs: 60_000, maxWaitMs: 100 })[0]! });
    for (let i = 0; i < 4; i++) await (await admit('get_status'))?.end(undefined);
    await expect(admit('list')).rejects.toMatchObject({ code: 'PROVIDER_RATE_LIMITED' });
    await (await admit('get_task'))?.end(undefined);
  });

  it('pauses every process after a 429, for as long as the provider asked', async () => {
    const [a, b] = quotas({ perWindow: 100 }, 2) as [ProviderQuota, ProviderQuota];
    const turn = await a.take();
    await turn?.end({ retryAfterMs: 600 });
    expect(await b.pausedUntil()).toBeGreaterThan(Date.now() + 400);
    const asked = Date.now();
    await (await b.take())?.end(undefined);
    expect(Date.now() - asked).toBeGreaterThanOrEqual(550);
  });

  it('refuses past its wait bound with a retryable PROVIDER_RATE_LIMITED naming when to come back', async () => {
    const [a] = quotas({ perWindow: 1, windowMs: 60_000, maxWaitMs: 150 }) as [ProviderQuota];
    await (await a.take())?.end(undefined);
    const asked = Date.now();
    const err = await a.take('get_task').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferenceError);
    expect(err).toMatchObject({ code: 'PROVIDER_RATE_LIMITED', retryable: true, statusCode: 503 });
    expect((err as InferenceError).retryAfterMs).toBeGreaterThan(50_000);
    expect((err as Error).message).toContain('get_task');
    expect(Date.now() - asked).toBeGreaterThanOrEqual(140);
  });

  it('is off at 0, and counts each endpoint against its own quota', async () => {
    const [off] = quotas({ perWindow: 0 }) as [ProviderQuota];
    expect(await off.take()).toBeUndefined();
    const [reads] = quotas({ perWindow: 5 }) as [ProviderQuota];
    const admit = quotaAdmission({ reads });
    expect(await admit('run')).toBeUndefined();
    expect(await admit('create_file')).toBeUndefined();
    const turn = await admit('get_status');
    expect(turn).toBeDefined();
    expect(await reads.inWindow()).toBe(1);
    await turn?.end(undefined);
  });
});
