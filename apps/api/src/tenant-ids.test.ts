import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, TEST_ADMIN_KEY } from './test/build-test-app.js';

// Tenant ids are 1-63 of a-z 0-9 _ -, starting with a letter or digit; every place that takes one
// says which character is wrong.
let app: FastifyInstance;
beforeAll(async () => {
  app = await buildTestApp();
});
afterAll(async () => {
  await app.close();
});

const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}` };

describe('tenant ids', () => {
  it('names the wrong character of a budget scope tenant:A', async () => {
    const res = await app.inject({
      method: 'PUT',
      url: '/v1/budgets/tenant:A',
      headers: admin,
      payload: { window: 'daily', limit_usd: 5 },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.issues).toEqual([
      {
        path: 'scope',
        message:
          'the tenant id has "A" at position 1 (use "a"): a tenant id is 1-63 lowercase letters, digits, _ and -, starting with a letter or digit',
      },
    ]);
  });

  it.each([
    [
      'X-Tenant',
      () => app.inject({ url: '/v1/jobs', headers: { ...admin, 'x-tenant': 'ads.team' } }),
      '"." at position 4',
    ],
    [
      'tenant',
      () =>
        app.inject({
          method: 'POST',
          url: '/v1/admin/keys',
          headers: admin,
          payload: { name: 'x', role: 'viewer', tenant: 'ads team' },
        }),
      'U+0020 at position 4',
    ],
    ['tenant', () => app.inject({ url: '/v1/tenants/-ads', headers: admin }), 'starts with "-"'],
    [
      'tenant',
      () => app.inject({ url: `/v1/jobs?tenant=${'a'.repeat(64)}`, headers: admin }),
      'is 64 characters long',
    ],
  ])('says what is wrong with %s', async (path, send, what) => {
    const res = await send();
    expect(res.statusCode).toBe(400);
    const [issue] = res.json().error.issues;
    expect(issue.path).toBe(path);
    expect(issue.message).toContain(what);
    expect(issue.message).toContain('1-63 lowercase letters, digits, _ and -');
  });
});
