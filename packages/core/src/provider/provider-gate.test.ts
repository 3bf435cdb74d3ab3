import { afterAll, describe, expect, it } from 'vitest';
import { createKeys } from '../infra/keys.js';
import { testRedisClient, uniquePrefix } from '../testing/index.js';
import { ProviderGate, type ProviderLimits } from './provider-gate.js';

const clients = Array.from({ length: 4 }, () => testRedisClient());
afterAll(async () => {
  for (const c of clients) await c.quit();
});

function gates(limits: Partial<ProviderLimits>, n = 1) {
  const keys = createKeys(uniquePrefix('gate'));
  const full: ProviderLimits = {
    submitsPerWindow: 0,
    windowMs: 1000,
    maxInFlight: 0,
    pendingHoldMs: 5000,
    ...limits,
  };
  return clients.slice(0, n).map((c) => new ProviderGate(c, keys, full));
}

describe('ProviderGate', () => {
  it('caps tasks in flight across workers; a job holding a slot is admitted again', async () => {
    const [a, b] = gates({ maxInFlight: 3 }, 2) as [ProviderGate, ProviderGate];
    for (const id of ['j1', 'j2', 'j3']) expect((await a.admit(id)).ok).toBe(true);
    expect(await b.admit('j4')).toMatchObject({ ok: false, reason: 'in_flight' });
    expect((await b.admit('j2')).ok).toBe(true);
    expect(await a.inFlight()).toBe(3);
    expect(await b.release('j1')).toBe(true);
    expect(await b.release('j1')).toBe(false);
    expect((await b.admit('j4')).ok).toBe(true);
  });

  it('limits submits per sliding window and says how long to wait', async () => {
    const [gate] = gates({ submitsPerWindow: 5, windowMs: 2000 }) as [ProviderGate];
    for (let i = 0; i < 5; i++) {
      const admitted = await gate.admit(`j${i}`);
      if (!admitted.ok) throw new Error('expected admission');
      await gate.submitted(admitted.token);
    }
    const refused = await gate.admit('j5');
    expect(refused).toMatchObject({ ok: false, reason: 'rate' });
    expect(refused.ok ? 0 : refused.waitMs).toBeGreaterThan(1000);
    expect(refused.ok ? 0 : refused.waitMs).toBeLessThanOrEqual(2001);
    expect(await gate.submitsInWindow()).toBe(5);
  });

  it('keeps a request that has not ended in the window for its whole hold', async () => {
    const [gate] = gates({ submitsPerWindow: 1, windowMs: 50, pendingHoldMs: 60_000 }) as [ProviderGate];
    expect((await gate.admit('slow')).ok).toBe(true);
    await new Promise((r) => setTimeout(r, 120));
    // Two windows have passed, but the first request has not ended: it still counts.
    expect(await gate.admit('next')).toMatchObject({ ok: false, reason: 'rate' });
  });

  it('pauses every worker after a 429 for the time the provider asked', async () => {
    const [a, b] = gates({}, 2) as [ProviderGate, ProviderGate];
    const admitted = await a.admit('j1');
    if (!admitted.ok) throw new Error('expected admission');
    await a.submitted(admitted.token, 1500);
    const refused = await b.admit('j2');
    expect(refused).toMatchObject({ ok: false, reason: 'paused' });
    expect(refused.ok ? 0 : refused.waitMs).toBeGreaterThan(1000);
  });

  it('never admits more than the limit in any window, with four workers racing', async () => {
    const limit = 10;
    const windowMs = 200;
    const all = gates({ submitsPerWindow: limit, windowMs }, 4);
    const admittedAt: number[] = [];
    const deadline = Date.now() + 1500;
    await Promise.all(
      all.map(async (gate, w) => {
        for (let i = 0; Date.now() < deadline; i++) {
          const r = await gate.admit(`w${w}-${i}`);
          if (r.ok) {
            admittedAt.push(Date.now());
            await gate.submitted(r.token);
          } else await new Promise((res) => setTimeout(res, Math.min(r.waitMs, 20)));
        }
      }),
    );
    admittedAt.sort((x, y) => x - y);
    let maxInWindow = 0;
    for (let i = 0, j = 0; j < admittedAt.length; j++) {
      while (admittedAt[j]! - admittedAt[i]! >= windowMs) i++;
      maxInWindow = Math.max(maxInWindow, j - i + 1);
    }
    expect(maxInWindow).toBeLessThanOrEqual(limit);
    expect(admittedAt.length).toBeGreaterThan(limit * 3);
  });
});
