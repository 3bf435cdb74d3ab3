import { ApiKeys } from '@recast/core/auth';
import { createMetricsRegistry } from '@recast/core/metrics';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, TEST_ADMIN_KEY, validJob } from './test/build-test-app.js';

let app: FastifyInstance;
const keys: Record<string, string> = { admin: TEST_ADMIN_KEY };
let jobA = '';
let batchA = '';
let revokedKey = '';

type Who = 'anonymous' | 'revoked' | 'admin' | 'submitter' | 'viewer' | 'foreign';

function headers(who: Who, extra: Record<string, string> = {}): Record<string, string> {
  const key = who === 'anonymous' ? undefined : who === 'revoked' ? revokedKey : keys[who];
  return { ...(key ? { authorization: `Bearer ${key}` } : {}), ...extra };
}

async function call(
  who: Who,
  method: string,
  url: string,
  payload?: unknown,
  extra: Record<string, string> = {},
) {
  const body =
    typeof payload === 'string' ? payload : payload === undefined ? undefined : JSON.stringify(payload);
  return app.inject({
    method: method as 'GET',
    url,
    headers: {
      ...headers(who, extra),
      ...(body !== undefined && !extra['content-type'] ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { payload: body } : {}),
  });
}

beforeAll(async () => {
  app = await buildTestApp({ RATE_LIMIT_MAX: '0' });
  for (const [name, role, tenant] of [
    ['submitter', 'submitter', 'alpha'],
    ['viewer', 'viewer', 'alpha'],
    ['foreign', 'submitter', 'beta'],
    ['revoked', 'viewer', 'alpha'],
  ] as const) {
    const res = await call('admin', 'POST', '/v1/admin/keys', { name, role, tenant });
    expect(res.statusCode).toBe(201);
    if (name === 'revoked') revokedKey = res.json().key;
    else keys[name] = res.json().key;
    if (name === 'revoked') {
      expect((await call('admin', 'DELETE', `/v1/admin/keys/${res.json().id}`)).statusCode).toBe(200);
    }
  }
  jobA = (await call('submitter', 'POST', '/v1/jobs', validJob)).json().id;
  const manifest = `${JSON.stringify(validJob)}\n${JSON.stringify(validJob)}\n`;
  batchA = (
    await call('submitter', 'POST', '/v1/batches', manifest, { 'content-type': 'application/x-ndjson' })
  ).json().id;
  expect(jobA).toMatch(/^job_/);
  expect(batchA).toMatch(/^bat_/);
});
afterAll(async () => {
  await app.close();
});

/** What each caller gets from each endpoint; ids are tenant alpha's resources. */
const ROUTES: {
  method: string;
  url: () => string;
  body?: () => unknown;
  type?: string;
  access: 'read' | 'write' | 'admin';
  owned?: boolean;
  /** What an allowed caller gets instead of a 2xx on this deployment (file uploads are off here). */
  passes?: number;
}[] = [
  { method: 'GET', url: () => '/v1/jobs', access: 'read' },
  { method: 'GET', url: () => `/v1/jobs/${jobA}`, access: 'read', owned: true },
  { method: 'POST', url: () => '/v1/jobs', body: () => validJob, access: 'write' },
  { method: 'POST', url: () => `/v1/jobs/${jobA}/cancel`, access: 'write', owned: true },
  { method: 'GET', url: () => '/v1/stats', access: 'read' },
  { method: 'GET', url: () => '/v1/limits', access: 'read' },
  { method: 'GET', url: () => '/v1/budgets', access: 'read' },
  {
    method: 'PUT',
    url: () => '/v1/budgets/tenant:alpha',
    body: () => ({ window: 'daily', limit_usd: 100 }),
    access: 'admin',
  },
  { method: 'GET', url: () => '/v1/costs', access: 'read' },
  { method: 'GET', url: () => '/v1/tenants/alpha', access: 'read', owned: true },
  { method: 'PUT', url: () => '/v1/tenants/alpha', body: () => ({ weight: 2 }), access: 'admin' },
  { method: 'GET', url: () => '/v1/batches', access: 'read' },
  { method: 'GET', url: () => `/v1/batches/${batchA}`, access: 'read', owned: true },
  { method: 'GET', url: () => `/v1/batches/${batchA}/jobs`, access: 'read', owned: true },
  { method: 'GET', url: () => `/v1/batches/${batchA}/results`, access: 'read', owned: true },
  {
    method: 'POST',
    url: () => '/v1/batches?dry_run=true',
    body: () => `${JSON.stringify(validJob)}\n`,
    type: 'application/x-ndjson',
    access: 'write',
  },
  { method: 'POST', url: () => `/v1/batches/${batchA}/retry`, access: 'write', owned: true },
  { method: 'POST', url: () => `/v1/batches/${batchA}/cancel`, access: 'write', owned: true },
  {
    method: 'POST',
    url: () => '/v1/files',
    body: () => '--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nx\r\n--b--\r\n',
    type: 'multipart/form-data; boundary=b',
    access: 'write',
    passes: 400,
  },
  { method: 'GET', url: () => `/v1/files/${'a'.repeat(64)}`, access: 'read', passes: 400 },
  { method: 'GET', url: () => '/v1/admin/keys', access: 'admin' },
  { method: 'DELETE', url: () => `/v1/admin/keys/${'0'.repeat(26)}`, access: 'admin', passes: 404 },
  {
    method: 'POST',
    url: () => '/v1/admin/keys',
    body: () => ({ name: 'x', role: 'viewer', tenant: 'alpha' }),
    access: 'admin',
  },
];

const ROLE_OF: Record<'admin' | 'submitter' | 'viewer' | 'foreign', 'admin' | 'submitter' | 'viewer'> = {
  admin: 'admin',
  submitter: 'submitter',
  viewer: 'viewer',
  foreign: 'submitter',
};
const ALLOWED = { read: ['admin', 'submitter', 'viewer'], write: ['admin', 'submitter'], admin: ['admin'] };

describe('access: every endpoint × role × own or foreign tenant', () => {
  for (const route of ROUTES) {
    it(`${route.method} ${route.url().replace(/(job|bat)_[0-9A-Z]+/g, ':id')}`, async () => {
      const send = (who: Who) =>
        call(
          who,
          route.method,
          route.url(),
          route.body?.(),
          route.type ? { 'content-type': route.type } : {},
        );
      expect((await send('anonymous')).statusCode).toBe(401);
      expect((await send('revoked')).statusCode).toBe(401);
      for (const who of ['viewer', 'submitter', 'foreign', 'admin'] as const) {
        const res = await send(who);
        const role = ROLE_OF[who];
        let expected: number | 'ok';
        if (!ALLOWED[route.access].includes(role)) expected = 403;
        else if (who === 'foreign' && route.owned) expected = 404;
        else expected = 'ok';
        const got = res.statusCode;
        const outcome = (got >= 200 && got < 300) || got === 409 || got === route.passes ? 'ok' : got;
        expect({ who, status: outcome }, res.body).toEqual({ who, status: expected });
      }
    });
  }

  it('lists only the caller’s tenant (an admin lists every one, or the one it asks for)', async () => {
    const own = (await call('viewer', 'GET', '/v1/jobs')).json().data as { tenant: string }[];
    expect(own.length).toBeGreaterThan(0);
    expect(own.every((j) => j.tenant === 'alpha')).toBe(true);
    const foreign = (await call('foreign', 'GET', '/v1/jobs')).json().data as { tenant: string }[];
    expect(foreign.every((j) => j.tenant === 'beta')).toBe(true);
    expect((await call('foreign', 'GET', '/v1/batches')).json().data).toEqual([]);
    expect((await call('foreign', 'GET', `/v1/jobs?batch=${batchA}`)).statusCode).toBe(404);
    expect((await call('foreign', 'GET', '/v1/jobs?tenant=alpha')).statusCode).toBe(403);
    const all = (await call('admin', 'GET', '/v1/jobs')).json().data as { tenant: string }[];
    expect(new Set(all.map((j) => j.tenant))).toEqual(new Set(['alpha', 'beta', 'default']));
    const beta = (await call('admin', 'GET', '/v1/jobs?tenant=beta')).json().data as { tenant: string }[];
    expect(beta.every((j) => j.tenant === 'beta')).toBe(true);
    // Costs and budgets: a tenant's report is its own spend; budgets, global and its own.
    const budgets = (await call('foreign', 'GET', '/v1/budgets')).json().data as { scope: string }[];
    expect(budgets.map((b) => b.scope)).not.toContain('tenant:alpha');
  });

  it('streams events of the caller’s tenant only (refusals answered before the stream opens)', async () => {
    for (const who of ['viewer', 'submitter', 'foreign'] as const) {
      expect((await call(who, 'GET', '/v1/events?tenant=alpha')).statusCode).toBe(403);
    }
    expect((await call('foreign', 'GET', `/v1/events?batch=${batchA}`)).statusCode).toBe(404);
    // An admin may read any tenant's stream, but a batch filter must name a batch of that tenant.
    expect((await call('admin', 'GET', `/v1/events?tenant=beta&batch=${batchA}`)).statusCode).toBe(404);
    expect((await call('anonymous', 'GET', '/v1/events')).statusCode).toBe(401);
  });

  it('decides the tenant by the key: X-Tenant of another tenant is refused, an admin may name one', async () => {
    const refused = await call('submitter', 'POST', '/v1/jobs', validJob, { 'x-tenant': 'beta' });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.issues[0].path).toBe('X-Tenant');
    const same = await call('submitter', 'POST', '/v1/jobs', validJob, { 'x-tenant': 'alpha' });
    expect(same.json().tenant).toBe('alpha');
    const forBeta = await call('admin', 'POST', '/v1/jobs', validJob, { 'x-tenant': 'beta' });
    expect(forBeta.json().tenant).toBe('beta');
  });

  it('stores keys only as hashes, shows a key once, and never lists it', async () => {
    const created = await call('admin', 'POST', '/v1/admin/keys', {
      name: 'ci',
      role: 'viewer',
      tenant: 'alpha',
    });
    const { key, id } = created.json();
    expect(key).toMatch(/^rk_/);
    const stored = JSON.stringify(await app.recast.redis.hgetall(app.recast.keys.apiKeys()));
    expect(stored).not.toContain(key);
    const listed = (await call('admin', 'GET', '/v1/admin/keys')).body;
    expect(listed).not.toContain(key);
    expect(listed).not.toContain('sha256');
    expect(listed).toContain(id);
    expect(
      (await call('admin', 'POST', '/v1/admin/keys', { name: 'x', role: 'root', tenant: 'alpha' })).json(),
    ).toMatchObject({ error: { issues: [{ path: 'role' }] } });
  });

  it('refuses a revoked key at once where it was revoked, and within the lookup cache elsewhere', async () => {
    const { key, id } = (
      await call('admin', 'POST', '/v1/admin/keys', { name: 'cached', role: 'viewer', tenant: 'alpha' })
    ).json();
    const asKey = () =>
      app.inject({ method: 'GET', url: '/v1/jobs', headers: { authorization: `Bearer ${key}` } });
    // Another API process: one that trusts a lookup for an hour, one that reads Redis every time.
    const { redis, keys: redisKeys } = app.recast;
    const lenient = new ApiKeys(redis, redisKeys, 3_600_000);
    const strict = new ApiKeys(redis, redisKeys, 0);
    expect((await asKey()).statusCode).toBe(200); // now in this process's cache
    expect(await lenient.lookup(key)).toMatchObject({ id });
    expect((await call('admin', 'DELETE', `/v1/admin/keys/${id}`)).statusCode).toBe(200);
    expect((await asKey()).statusCode).toBe(401);
    expect(await strict.lookup(key)).toBeUndefined();
    // The documented staleness: a process that looked the key up just before keeps it until its
    // cache entry expires (API_KEY_CACHE_MS), and never longer.
    expect(await lenient.lookup(key)).toMatchObject({ id });
    expect(await new ApiKeys(redis, redisKeys, 3_600_000).lookup(key)).toBeUndefined();
  });

  it('mounts Bull Board for admins only, with a Basic prompt for browsers', async () => {
    const anonymous = await call('anonymous', 'GET', '/admin/queues');
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toContain('Basic');
    expect((await call('viewer', 'GET', '/admin/queues')).statusCode).toBe(403);
    expect((await call('submitter', 'GET', '/admin/queues/api/queues')).statusCode).toBe(403);
    const basic = `Basic ${Buffer.from(`admin:${TEST_ADMIN_KEY}`).toString('base64')}`;
    const page = await app.inject({ method: 'GET', url: '/admin/queues', headers: { authorization: basic } });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    const api = await call('admin', 'GET', '/admin/queues/api/queues');
    expect(api.statusCode).toBe(200);
    expect((api.json() as { queues: { name: string }[] }).queues.map((q) => q.name).sort()).toEqual([
      'dispatch',
      'notify',
      'settle',
    ]);
    // Read-only: BullMQ jobs are not changed behind the state machine's back.
    const clean = await call('admin', 'PUT', '/admin/queues/api/queues/dispatch/clean/completed');
    expect(clean.statusCode).toBe(405);
  });

  it('leaves health and the provider webhook outside key auth', async () => {
    expect((await call('anonymous', 'GET', '/healthz')).statusCode).toBe(200);
    expect((await call('anonymous', 'GET', '/readyz')).statusCode).toBe(200);
    // A webhook is authenticated by its per-job token, not a key: a bad token is its own 401.
    const hook = await call('anonymous', 'POST', `/webhooks/inference/${jobA}?attempt=1&token=forged`, {});
    expect(hook.json().error.message).toBe('invalid webhook token');
  });
});

describe('per-key rate limit and security headers', () => {
  it('refuses an address outright after too many unauthenticated requests, never the webhooks', async () => {
    const limited = await buildTestApp({ RATE_LIMIT_MAX: '0', AUTH_FAILURES_MAX: '3' });
    try {
      const guess = (i: number) =>
        limited.inject({
          method: 'GET',
          url: '/v1/stats',
          headers: { authorization: `Bearer rk_guess_${i}_0123456789abcdef` },
        });
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await guess(i)).statusCode);
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      const refused = await guess(9);
      expect(refused.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
      // Counted in Redis (every API process shares it), and the provider's webhooks stay open.
      const counted = `${limited.recast.keys.prefix}:ratelimit:*auth-failures:*`;
      expect(await limited.recast.redis.keys(counted)).toHaveLength(1);
      const webhook = await limited.inject({
        method: 'POST',
        url: '/webhooks/inference/job_01M8RKBQ3SHW94MYSMNEAJVDRN?token=bad',
        payload: { id: 't', status: 'completed' },
      });
      expect(webhook.statusCode).toBe(401);
      expect((await limited.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('answers 429 RATE_LIMITED past the limit for that key only, in Redis, health never limited', async () => {
    const limited = await buildTestApp({ RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' });
    try {
      const auth = (key: string) => ({ authorization: `Bearer ${key}` });
      const other = (
        await limited.inject({
          method: 'POST',
          url: '/v1/admin/keys',
          headers: auth(TEST_ADMIN_KEY),
          payload: { name: 'other', role: 'viewer', tenant: 'alpha' },
        })
      ).json().key as string;
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        statuses.push(
          (await limited.inject({ method: 'GET', url: '/v1/stats', headers: auth(other) })).statusCode,
        );
      }
      expect(statuses).toEqual([200, 200, 200, 429]);
      const refused = await limited.inject({ method: 'GET', url: '/v1/stats', headers: auth(other) });
      expect(refused.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
      expect(refused.headers['retry-after']).toBeDefined();
      // The admin key has its own allowance (it used one for the key above).
      expect(
        (await limited.inject({ method: 'GET', url: '/v1/stats', headers: auth(TEST_ADMIN_KEY) })).statusCode,
      ).toBe(200);
      for (let i = 0; i < 5; i++)
        expect((await limited.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      const counted = await limited.recast.redis.keys(`${limited.recast.keys.prefix}:ratelimit:*`);
      expect(counted.length).toBeGreaterThan(0);
    } finally {
      await limited.close();
    }
  });

  it('serves /metrics on the public port to admin keys only', async () => {
    const registry = createMetricsRegistry({ process: 'api', defaultMetrics: false });
    const withMetrics = await buildTestApp({ RATE_LIMIT_MAX: '0' }, { registry });
    try {
      expect((await withMetrics.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
      const admin = await withMetrics.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
      });
      expect(admin.statusCode).toBe(200);
      expect(admin.headers['content-type']).toContain('text/plain');
    } finally {
      await withMetrics.close();
    }
    expect((await call('viewer', 'GET', '/metrics')).statusCode).toBe(404);
  });

  it('sends security headers on every answer', async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.headers).toMatchObject({
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'SAMEORIGIN',
      'strict-transport-security': expect.stringContaining('max-age='),
      'content-security-policy': expect.stringContaining("default-src 'self'"),
    });
  });
});
