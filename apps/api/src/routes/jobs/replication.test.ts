import { afterEach, expect, it } from 'vitest';
import { buildTestApp, TEST_ADMIN_KEY, validJob } from '../../test/build-test-app.js';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

const auth = { authorization: `Bearer ${TEST_ADMIN_KEY}` };

// The run's Redis has no replica: a deployment that wants one gets no false yes from it.
it('answers a submit 503 REDIS_NOT_REPLICATED with Retry-After when no replica confirms it, and a budget change too', async () => {
  const app = await buildTestApp({ REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '50' });
  close = () => app.close();
  const res = await app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: { ...auth, 'x-tenant': 'acme' },
    payload: validJob,
  });
  expect(res.statusCode).toBe(503);
  expect(res.headers['retry-after']).toBe('1');
  expect(res.json()).toMatchObject({ error: { code: 'REDIS_NOT_REPLICATED' } });
  const budget = await app.inject({
    method: 'PUT',
    url: '/v1/budgets/global',
    headers: auth,
    payload: { window: 'daily', limit_usd: 10 },
  });
  expect(budget.statusCode).toBe(503);
  expect(budget.json()).toMatchObject({ error: { code: 'REDIS_NOT_REPLICATED' } });
});

it('answers a manifest 503 as well (its jobs are accepted ones), but not its dry run', async () => {
  const app = await buildTestApp({
    AUTH_DISABLED: 'true',
    REDIS_WAIT_REPLICAS: '1',
    REDIS_WAIT_TIMEOUT_MS: '50',
  });
  close = () => app.close();
  const csv = [
    'custom_id,video,images,duration_seconds',
    `a,${validJob.video},${validJob.images[0]},4`,
    '',
  ].join('\n');
  const headers = { 'x-tenant': 'csv', 'content-type': 'text/csv' };
  const res = await app.inject({ method: 'POST', url: '/v1/batches', payload: csv, headers });
  expect(res.statusCode).toBe(503);
  expect(res.json()).toMatchObject({ error: { code: 'REDIS_NOT_REPLICATED' } });
  const dry = await app.inject({ method: 'POST', url: '/v1/batches?dry_run=true', payload: csv, headers });
  expect(dry.statusCode).toBeLessThan(300);
});

it('answers 202 without a wait by default (REDIS_WAIT_REPLICAS=0)', async () => {
  const app = await buildTestApp();
  close = () => app.close();
  const res = await app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: { ...auth, 'x-tenant': 'acme' },
    payload: validJob,
  });
  expect(res.statusCode).toBe(202);
});
