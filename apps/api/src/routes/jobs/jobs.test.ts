import { isJobId } from '@recast/core/model';
import { waitFor } from '@recast/core/testing';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, validJob } from '../../test/build-test-app.js';

let app: FastifyInstance;
beforeAll(async () => {
  // Tenants named by X-Tenant: what is tested here is jobs, not keys (see access.test.ts).
  app = await buildTestApp({ AUTH_DISABLED: 'true' });
});
afterAll(async () => {
  await app.close();
});

const post = (payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/v1/jobs', payload: payload as object, headers });

describe('POST /v1/jobs', () => {
  it('accepts a job with the app defaults filled in and queues it', async () => {
    const res = await post({ ...validJob, duration_seconds: 5, metadata: { team: 'ads' } });
    expect(res.statusCode).toBe(202);
    const job = res.json();
    expect(isJobId(job.id)).toBe(true);
    expect(res.headers.location).toBe(`/v1/jobs/${job.id}`);
    expect(job).toMatchObject({
      state: 'queued',
      tenant: 'default',
      duration_seconds: 5,
      metadata: { team: 'ads' },
      input: {
        video: validJob.video,
        images: validJob.images,
        instruction_prompt: null,
        resolution: '720p',
        turbo: false,
        target_fps: 'original',
        save_audio: true,
        ignore_audio: false,
        seed: null,
        disable_safety_checker: false,
      },
    });
    // In its tenant's line, then handed to the dispatch queue by the fair-share feeder.
    const queued = await waitFor(async () =>
      (await app.recast.queues.dispatch.getWaiting(0, -1)).find((j) => j.data.jobId === job.id),
    );
    expect(queued.data).toEqual({ jobId: job.id });
    expect(job.estimate).toEqual({
      seconds: 5,
      source: 'hint',
      micro_usd: 150_000,
      usd: '0.150000',
      probe_error: null,
    });
    const read = await app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual(job);
  });

  it('gives ids that sort by creation time', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await post(validJob)).json().id);
    expect([...ids].sort()).toEqual(ids);
  });

  const badValues: [string, Record<string, unknown>][] = [
    ['video', { video: undefined }],
    ['video', { video: 'ftp://example.com/a.mp4' }],
    ['video', { video: 'not a url' }],
    ['video', { video: 42 }],
    ['images', { images: [] }],
    ['images', { images: 'https://example.com/a.png' }],
    ['images', { images: Array.from({ length: 5 }, (_, i) => `https://example.com/${i}.png`) }],
    ['images.1', { images: ['https://example.com/a.png', 'file:///etc/passwd'] }],
    ['instruction_prompt', { instruction_prompt: 7 }],
    ['instruction_prompt', { instruction_prompt: 'x'.repeat(2001) }],
    ['resolution', { resolution: '4k' }],
    ['turbo', { turbo: 'yes' }],
    ['target_fps', { target_fps: 30 }],
    ['target_fps', { target_fps: '60' }],
    ['save_audio', { save_audio: 1 }],
    ['ignore_audio', { ignore_audio: 'false' }],
    ['seed', { seed: 1.5 }],
    ['seed', { seed: 'abc' }],
    ['disable_safety_checker', { disable_safety_checker: null }],
    ['duration_seconds', { duration_seconds: -1 }],
    ['duration_seconds', { duration_seconds: 'ten' }],
    ['duration_seconds', { duration_seconds: 100_000 }],
    ['metadata', { metadata: 'x' }],
    ['metadata', { metadata: { blob: 'x'.repeat(5000) } }],
    ['callback_url', { callback_url: 'javascript:alert(1)' }],
    ['colour', { colour: 'red' }],
  ];
  for (const [field, patch] of badValues) {
    it(`answers 400 naming ${field} for ${JSON.stringify(patch).slice(0, 60)}`, async () => {
      const res = await post({ ...validJob, ...patch });
      expect(res.statusCode).toBe(400);
      const { error } = res.json();
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.issues.map((i: { path: string }) => i.path)).toContain(field);
      expect(error.message).toContain(field);
    });
  }

  it('answers 400 for malformed JSON and a non-object body, and writes nothing', async () => {
    const jobKeys = async () => (await app.recast.redis.keys(app.recast.keys.job('*'))).length;
    const before = await jobKeys();
    const malformed = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: '{"video":',
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed.statusCode).toBe(400);
    expect((await post([1, 2])).statusCode).toBe(400);
    expect((await post({ ...validJob, resolution: '8k' })).statusCode).toBe(400);
    expect(await jobKeys()).toBe(before);
  });

  it('refuses a tenant name that is not an identifier', async () => {
    const res = await post(validJob, { 'x-tenant': 'Bad Tenant!' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.issues[0].path).toBe('X-Tenant');
  });
});

describe('Idempotency-Key', () => {
  it('returns the same job for the same body, without queueing it twice', async () => {
    const headers = { 'idempotency-key': `key-${Date.now()}` };
    const first = await post(validJob, headers);
    // Same request with a default spelled out: still the same body.
    const second = await post({ ...validJob, resolution: '720p' }, headers);
    expect(first.statusCode).toBe(202);
    expect(second.statusCode).toBe(200);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.json().id).toBe(first.json().id);
  });

  it('answers 422 for the same key with a different body', async () => {
    const headers = { 'idempotency-key': `key-${Date.now()}-b` };
    expect((await post(validJob, headers)).statusCode).toBe(202);
    const res = await post({ ...validJob, resolution: '1080p' }, headers);
    expect(res.statusCode).toBe(422);
    expect(res.json().error.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('keeps keys apart per tenant', async () => {
    const key = `key-${Date.now()}-c`;
    const a = await post(validJob, { 'idempotency-key': key, 'x-tenant': 'team-a' });
    const b = await post(validJob, { 'idempotency-key': key, 'x-tenant': 'team-b' });
    expect(a.statusCode).toBe(202);
    expect(b.statusCode).toBe(202);
    expect(a.json().id).not.toBe(b.json().id);
  });
});

describe('GET /v1/jobs/:id', () => {
  it('is 404 for an unknown id, a malformed id and another tenant', async () => {
    const mine = (await post(validJob, { 'x-tenant': 'owner' })).json();
    expect(
      (await app.inject({ method: 'GET', url: '/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV' })).statusCode,
    ).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/v1/jobs/../../etc' })).statusCode).toBe(404);
    const foreign = await app.inject({
      method: 'GET',
      url: `/v1/jobs/${mine.id}`,
      headers: { 'x-tenant': 'intruder' },
    });
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json().error.code).toBe('NOT_FOUND');
    expect(
      (await app.inject({ method: 'GET', url: `/v1/jobs/${mine.id}`, headers: { 'x-tenant': 'owner' } }))
        .statusCode,
    ).toBe(200);
  });
});

describe('health', () => {
  it('answers /healthz and /readyz', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({
      status: 'ready',
      redis: 'ok',
      database: 'ok',
    });
  });
});
