import { createMetricsRegistry } from '@recast/core/metrics';
import { webhookToken } from '@recast/core/provider';
import { MetricsScrape } from '@recast/core/testing';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, TEST_ADMIN_KEY, TEST_WEBHOOK_SECRET, validJob } from '../../test/build-test-app.js';

let app: FastifyInstance;
let jobId: string;
beforeAll(async () => {
  app = await buildTestApp({ WEBHOOK_BODY_LIMIT_BYTES: '4096' });
  jobId = (
    await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: validJob,
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
    })
  ).json().id;
});
afterAll(async () => {
  await app.close();
});

const hook = (id: string, token: string | undefined, payload: unknown) =>
  app.inject({
    method: 'POST',
    url: `/webhooks/inference/${id}?attempt=1${token === undefined ? '' : `&token=${encodeURIComponent(token)}`}`,
    payload: payload as string,
    headers: { 'content-type': 'application/json' },
  });

const completed = { id: 'task_1', status: 10, status_text: 'completed', output: null, error: null };

describe('POST /webhooks/inference/:jobId', () => {
  it('answers 202 and puts a settle step on the queue for a valid webhook', async () => {
    const res = await hook(jobId, webhookToken(TEST_WEBHOOK_SECRET, jobId), completed);
    expect(res.statusCode).toBe(202);
    const settles = await app.recast.queues.settle.getJobs(['waiting', 'delayed', 'active']);
    expect(settles.map((j) => j.data)).toContainEqual(expect.objectContaining({ jobId, taskId: 'task_1' }));
  });

  it('accepts the {event, timestamp, data} envelope too', async () => {
    const res = await hook(jobId, webhookToken(TEST_WEBHOOK_SECRET, jobId), {
      event: 'task.completed',
      timestamp: new Date().toISOString(),
      data: { ...completed, id: 'task_2' },
    });
    expect(res.statusCode).toBe(202);
  });

  it("is 401 for a forged, missing or another job's token, without touching the job", async () => {
    const before = await app.recast.store.get(jobId);
    expect((await hook(jobId, 'forged', completed)).statusCode).toBe(401);
    expect((await hook(jobId, undefined, completed)).statusCode).toBe(401);
    const other = 'job_01ARZ3NDEKTSV4RRFFQ69G5FAV';
    expect((await hook(jobId, webhookToken(TEST_WEBHOOK_SECRET, other), completed)).statusCode).toBe(401);
    expect((await hook(jobId, webhookToken('another-secret-entirely', jobId), completed)).statusCode).toBe(
      401,
    );
    expect(await app.recast.store.get(jobId)).toEqual(before);
  });

  it('is 404 for an unknown job with a valid token', async () => {
    const unknown = 'job_01ARZ3NDEKTSV4RRFFQ69G5FAV';
    const res = await hook(unknown, webhookToken(TEST_WEBHOOK_SECRET, unknown), completed);
    expect(res.statusCode).toBe(404);
  });

  it('is 400 for a malformed body and 413 for an oversized one', async () => {
    const token = webhookToken(TEST_WEBHOOK_SECRET, jobId);
    expect((await hook(jobId, token, '{"id":')).statusCode).toBe(400);
    expect((await hook(jobId, token, { status: 10 })).statusCode).toBe(400);
    expect((await hook(jobId, token, [1, 2, 3])).statusCode).toBe(400);
    expect((await hook(jobId, token, { ...completed, padding: 'x'.repeat(10_000) })).statusCode).toBe(413);
  });
});

describe('webhook metrics', () => {
  it('counts every webhook by outcome, from the status answered', async () => {
    const registry = createMetricsRegistry({ process: 'api', defaultMetrics: false });
    const counted = await buildTestApp({ WEBHOOK_BODY_LIMIT_BYTES: '4096' }, { registry });
    try {
      const id = (
        await counted.inject({
          method: 'POST',
          url: '/v1/jobs',
          payload: validJob,
          headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
        })
      ).json().id;
      const send = (jobId: string, token: string | undefined, payload: unknown) =>
        counted.inject({
          method: 'POST',
          url: `/webhooks/inference/${jobId}?attempt=1${token === undefined ? '' : `&token=${token}`}`,
          payload: payload as string,
          headers: { 'content-type': 'application/json' },
        });
      const token = webhookToken(TEST_WEBHOOK_SECRET, id);
      const unknown = 'job_01ARZ3NDEKTSV4RRFFQ69G5FAV';
      const statuses = [
        await send(id, token, completed),
        await send(id, token, { ...completed, id: 'task_2' }),
        await send(id, 'forged', completed),
        await send(unknown, webhookToken(TEST_WEBHOOK_SECRET, unknown), completed),
        await send(id, token, '{"id":'),
        await send(id, token, { ...completed, padding: 'x'.repeat(10_000) }),
      ].map((r) => r.statusCode);
      expect(statuses).toEqual([202, 202, 401, 404, 400, 413]);
      const page = new MetricsScrape(await registry.metrics());
      const outcomes = Object.fromEntries(
        page.find('recast_webhooks_total').map((s) => [s.labels.outcome, s.value]),
      );
      expect(outcomes).toEqual({ accepted: 2, bad_token: 1, unknown_job: 1, malformed: 1, too_large: 1 });
    } finally {
      await counted.close();
    }
  });
});
