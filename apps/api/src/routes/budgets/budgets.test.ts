import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, TEST_ADMIN_KEY } from '../../test/build-test-app.js';

let app: FastifyInstance;
beforeAll(async () => {
  app = await buildTestApp();
});

/** Budgets and weights are an admin's to set and see across tenants. */
const inject = (options: InjectOptions) =>
  app.inject({ ...options, headers: { ...options.headers, authorization: `Bearer ${TEST_ADMIN_KEY}` } });
afterAll(async () => {
  await app.close();
});

const put = (scope: string, payload: unknown) =>
  inject({ method: 'PUT', url: `/v1/budgets/${encodeURIComponent(scope)}`, payload: payload as object });

describe('budgets API', () => {
  it('sets limits in dollars, stores micro-dollars, and lists them with their current usage', async () => {
    const res = await put('tenant:acme', { window: 'daily', limit_usd: 12.5 });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      object: 'budget',
      scope: 'tenant:acme',
      window: 'daily',
      limit_micro_usd: 12_500_000,
      limit_usd: '12.500000',
      reserved_micro_usd: 0,
      spent_micro_usd: 0,
      available_usd: '12.500000',
      period: new Date().toISOString().slice(0, 10),
    });
    await put('global', { window: 'monthly', limit_usd: 1000 });
    await put('batch:bat_01', { window: 'lifetime', limit_usd: 0.000001 });
    const list = await inject({ method: 'GET', url: '/v1/budgets' });
    expect(list.json().data.map((b: { scope: string; window: string }) => `${b.scope}|${b.window}`)).toEqual([
      'batch:bat_01|lifetime',
      'global|monthly',
      'tenant:acme|daily',
    ]);
    const one = await inject({ method: 'GET', url: '/v1/budgets?scope=global' });
    expect(one.json().data).toHaveLength(1);
    // null removes a limit.
    await put('global', { window: 'monthly', limit_usd: null });
    expect((await inject({ method: 'GET', url: '/v1/budgets?scope=global' })).json().data).toEqual([]);
  });

  const bad: [string, string, unknown, string][] = [
    ['a scope that is not one', 'team:acme', { window: 'daily', limit_usd: 1 }, 'scope'],
    ['an unknown window', 'global', { window: 'weekly', limit_usd: 1 }, 'window'],
    ['a negative limit', 'global', { window: 'daily', limit_usd: -1 }, 'limit_usd'],
    ['sub-micro-dollar precision', 'global', { window: 'daily', limit_usd: 0.0000001 }, 'limit_usd'],
    ['a string amount', 'global', { window: 'daily', limit_usd: '5' }, 'limit_usd'],
    ['an unknown field', 'global', { window: 'daily', limit_usd: 5, currency: 'EUR' }, 'currency'],
  ];
  for (const [what, scope, payload, field] of bad) {
    it(`answers 400 naming ${field} for ${what}, and changes nothing`, async () => {
      const before = (await inject({ method: 'GET', url: '/v1/budgets' })).json();
      const res = await put(scope, payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.issues.map((i: { path: string }) => i.path)).toContain(field);
      expect((await inject({ method: 'GET', url: '/v1/budgets' })).json()).toEqual(before);
    });
  }
});

describe('tenants API', () => {
  it('sets a fair-share weight and reports the tenant line', async () => {
    expect((await inject({ method: 'GET', url: '/v1/tenants/acme' })).json()).toEqual({
      object: 'tenant',
      id: 'acme',
      weight: 1,
      waiting_dispatch: 0,
    });
    const res = await inject({ method: 'PUT', url: '/v1/tenants/acme', payload: { weight: 3 } });
    expect(res.json()).toMatchObject({ id: 'acme', weight: 3 });
    for (const [payload, field] of [
      [{ weight: 0 }, 'weight'],
      [{ weight: 'heavy' }, 'weight'],
      [{ weight: 2, colour: 1 }, 'colour'],
    ] as const) {
      const refused = await inject({ method: 'PUT', url: '/v1/tenants/acme', payload });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error.issues.map((i: { path: string }) => i.path)).toContain(field);
    }
    expect(
      (await inject({ method: 'PUT', url: '/v1/tenants/Not%20Ok', payload: { weight: 1 } })).statusCode,
    ).toBe(400);
    expect((await inject({ method: 'GET', url: '/v1/tenants/acme' })).json().weight).toBe(3);
  });
});

describe('costs API', () => {
  it('validates its query, naming the parameter', async () => {
    for (const [query, field] of [
      ['from=2026-13-01', 'from'],
      ['from=yesterday', 'from'],
      ['from=2026-11-30&to=2026-11-01', 'to'],
      ['from=2020-01-01&to=2026-01-01', 'to'],
      ['group_by=day,colour', 'group_by.1'],
      ['shape=round', 'shape'],
    ] as const) {
      const res = await inject({ method: 'GET', url: `/v1/costs?${query}` });
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error.issues.map((i: { path: string }) => i.path)).toContain(field);
    }
    const ok = await inject({ method: 'GET', url: '/v1/costs?group_by=day,resolution' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ object: 'cost_report', group_by: ['day', 'resolution'], rows: [] });
  });
});
