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

  it('paces submits: a burst, then one per window/limit, on every worker; a quiet spell refills it', async () => {
    // 10 a second: one every 100 ms, three back to back.
    const [a, b] = gates({ submitsPerWindow: 10, windowMs: 1000, burst: 3 }, 2) as [
      ProviderGate,
      ProviderGate,
    ];
    const take = async (gate: ProviderGate, id: string) => {
      const admitted = await gate.admit(id);
      if (admitted.ok) await gate.submitted(admitted.token);
      return admitted;
    };
    for (const id of ['j1', 'j2', 'j3']) expect((await take(a, id)).ok).toBe(true);
    const held = await take(b, 'j4');
    expect(held).toMatchObject({ ok: false, reason: 'rate' });
    // Due one interval after the first of the three, not when the window slides.
    expect(held.ok ? 0 : held.waitMs).toBeGreaterThan(0);
    expect(held.ok ? 0 : held.waitMs).toBeLessThanOrEqual(100);
    await new Promise((r) => setTimeout(r, held.ok ? 0 : held.waitMs + 5));
    expect((await take(b, 'j4')).ok).toBe(true);
    expect((await take(a, 'j5')).ok).toBe(false);
    await new Promise((r) => setTimeout(r, 350));
    for (const id of ['j6', 'j7', 'j8']) expect((await take(a, id)).ok).toBe(true);
    expect((await take(a, 'j9')).ok).toBe(false);
  });

  it('paces at the limit: four workers racing for 1.5 s keep about one submit per interval', async () => {
    const limit = 20;
    const windowMs = 1000;
    const racing = gates({ submitsPerWindow: limit, windowMs, burst: 2 }, 4);
    const admittedAt: number[] = [];
    const started = Date.now();
    await Promise.all(
      racing.map(async (gate, w) => {
        for (let i = 0; Date.now() - started < 1500; i++) {
          const admitted = await gate.admit(`w${w}-${i}`);
          if (admitted.ok) {
            admittedAt.push(Date.now());
            await gate.submitted(admitted.token);
          } else await new Promise((r) => setTimeout(r, Math.min(admitted.waitMs, 20)));
        }
      }),
    );
    admittedAt.sort((x, y) => x - y);
    // No burst beyond 2 in any interval's span, and ~1.5 s / 50 ms + burst submits in all.
    let maxIn50 = 0;
    for (let i = 0; i < admittedAt.length; i++) {
      let j = i;
      while (j < admittedAt.length && admittedAt[j]! - admittedAt[i]! < 45) j++;
      maxIn50 = Math.max(maxIn50, j - i);
    }
    expect(maxIn50).toBeLessThanOrEqual(2);
    expect(admittedAt.length).toBeLessThanOrEqual(1500 / 50 + 2 + 1);
    expect(admittedAt.length).toBeGreaterThanOrEqual(20);
  });
});
