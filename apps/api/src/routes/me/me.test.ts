import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, TEST_ADMIN_KEY } from '../../test/build-test-app.js';

let app: FastifyInstance;
beforeAll(async () => {
  app = await buildTestApp();
});
afterAll(async () => {
  await app.close();
});

const as = (key: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${key}`, ...headers } });

async function keyOf(role: 'submitter' | 'viewer', tenant: string): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/admin/keys',
    headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
    payload: { name: `${role} of ${tenant}`, role, tenant },
  });
  expect(res.statusCode).toBe(201);
  return res.json().key as string;
}

describe('GET /v1/me', () => {
  it("says each key's role, tenant and what it may do", async () => {
    const admin = await as(TEST_ADMIN_KEY, { 'x-tenant': 'acme' });
    expect(admin.json()).toMatchObject({
      object: 'principal',
      role: 'admin',
      tenant: 'acme',
      all_tenants: true,
      can_write: true,
      can_admin: true,
    });
    const submitter = await as(await keyOf('submitter', 'acme'));
    expect(submitter.json()).toMatchObject({
      role: 'submitter',
      tenant: 'acme',
      all_tenants: false,
      can_write: true,
      can_admin: false,
    });
    const viewer = await as(await keyOf('viewer', 'acme'));
    expect(viewer.json()).toMatchObject({
      role: 'viewer',
      tenant: 'acme',
      can_write: false,
      can_admin: false,
    });
    expect((await as('rk_not_a_key')).statusCode).toBe(401);
  });
});
