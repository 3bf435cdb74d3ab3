import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../errors/app-error.js';
import {
  type CannedHandler,
  type CannedServer,
  refusedPortUrl,
  startCannedServer,
} from '../testing/canned-server.js';
import {
  createInferenceClient,
  type InferenceClient,
  type InferenceClientOptions,
} from './inference-client.js';
import { InferenceError } from './inference-error.js';
import { DEFAULT_MAX_RETRY_AFTER_MS } from './rate-limit.js';

const PROBLEM = { 'content-type': 'application/problem+json' };

let server: CannedServer | undefined;
let client: InferenceClient | undefined;

async function setup(handler: CannedHandler, options: Partial<InferenceClientOptions> = {}) {
  server = await startCannedServer(handler);
  client = createInferenceClient({ baseUrl: server.url, apiKey: 'inf_k', ...options });
  return client;
}

async function failure(promise: Promise<unknown>): Promise<InferenceError> {
  const err: unknown = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(err).toBeInstanceOf(InferenceError);
  expect(err).toBeInstanceOf(AppError);
  return err as InferenceError;
}

afterEach(async () => {
  await client?.close();
  await server?.close();
  client = undefined;
  server = undefined;
});

function problem(status: number, code: string, detail: string) {
  return {
    status,
    headers: PROBLEM,
    body: { type: `https://api.inference.sh/errors/${code}`, title: code.toUpperCase(), status, detail },
  };
}

describe('problem+json → InferenceError', () => {
  const table: Array<[number, string, string, boolean]> = [
    [400, 'invalid_request', 'PROVIDER_BAD_REQUEST', false],
    [401, 'unauthorized', 'PROVIDER_UNAUTHORIZED', false],
    [403, 'forbidden', 'PROVIDER_FORBIDDEN', false],
    [404, 'not_found', 'PROVIDER_NOT_FOUND', false],
    [408, 'request_timeout', 'PROVIDER_UNAVAILABLE', true],
    [409, 'conflict', 'PROVIDER_BAD_REQUEST', false],
    [422, 'task_failed', 'PROVIDER_TASK_FAILED', false],
    [429, 'rate_limited', 'PROVIDER_RATE_LIMITED', true],
    [500, 'internal_error', 'PROVIDER_UNAVAILABLE', true],
    [503, 'unavailable', 'PROVIDER_UNAVAILABLE', true],
  ];
  it.each(table)('%i %s → %s (retryable %s)', async (status, type, code, retryable) => {
    const client = await setup(() => problem(status, type, `detail for ${status}`));
    const err = await failure(client.getTask('t1'));
    expect(err).toMatchObject({ code, retryable, httpStatus: status, problemType: type });
    expect(err.detail).toBe(`detail for ${status}`);
    expect(err.message).toContain('GET /tasks/t1');
    expect(err.message).toContain(`detail for ${status}`);
    expect(err.toJSON()).toMatchObject({ code, details: { httpStatus: status, problemType: type } });
  });

  it('takes the human text from detail, then title, then error.message, then message', async () => {
    const client = await setup(() => ({ status: 400, body: { type: 'x/errors/bad', title: 'Bad things' } }));
    expect((await failure(client.getTask('t'))).detail).toBe('Bad things');
    server?.respond(() => ({
      status: 400,
      body: { error: { code: 'bad_input', message: 'images: too many' } },
    }));
    expect(await failure(client.getTask('t'))).toMatchObject({
      detail: 'images: too many',
      problemType: 'bad_input',
    });
    server?.respond(() => ({ status: 400, body: { message: 'plain message' } }));
    expect((await failure(client.getTask('t'))).detail).toBe('plain message');
    server?.respond(() => ({ status: 400, body: { type: 'about:blank' } }));
    expect(await failure(client.getTask('t'))).toMatchObject({
      detail: 'HTTP 400 Bad Request',
      problemType: undefined,
    });
  });

  it('412 lists the unmet requirements (body without envelope)', async () => {
    const errors = [
      { type: 'secret', key: 'HF_TOKEN', message: 'secret HF_TOKEN is not set' },
      { type: 'integration', key: 'google' },
    ];
    const client = await setup(() => ({ status: 412, body: { satisfied: false, errors } }));
    const err = await failure(client.run({ input: {} }));
    expect(err).toMatchObject({ code: 'PROVIDER_REQUIREMENTS_NOT_MET', retryable: false, httpStatus: 412 });
    expect(err.detail).toBe('requirements not met: secret HF_TOKEN is not set; missing integration google');
    expect(err.requirements).toEqual(errors);
  });

  it('a non-JSON 502 (a proxy HTML page) is a retryable PROVIDER_UNAVAILABLE', async () => {
    const client = await setup(() => ({
      status: 502,
      headers: { 'content-type': 'text/html' },
      body: '<html><body><h1>502 Bad Gateway</h1></body></html>',
    }));
    const err = await failure(client.getStatus('t'));
    expect(err).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', retryable: true, httpStatus: 502 });
    expect(err.detail).toBe('HTTP 502 Bad Gateway');
  });

  it('a plain-text 500 keeps its text as the detail', async () => {
    const client = await setup(() => ({ status: 500, body: 'database is on fire' }));
    expect(await failure(client.getStatus('t'))).toMatchObject({
      code: 'PROVIDER_UNAVAILABLE',
      detail: 'database is on fire',
    });
  });
});

describe('429 waiting hints', () => {
  it('Retry-After in seconds', async () => {
    const client = await setup(() => ({
      ...problem(429, 'rate_limited', 'slow down'),
      headers: { 'retry-after': '7' },
    }));
    expect(await failure(client.run({ input: {} }))).toMatchObject({
      code: 'PROVIDER_RATE_LIMITED',
      retryAfterMs: 7000,
    });
  });

  it('Retry-After as an HTTP-date', async () => {
    const at = new Date(Date.now() + 30_000).toUTCString();
    const client = await setup(() => ({ status: 429, headers: { 'retry-after': at } }));
    const err = await failure(client.run({ input: {} }));
    // HTTP-dates have whole seconds: the wait is 29-30 s give or take the test's own run time.
    expect(err.retryAfterMs).toBeGreaterThan(25_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(30_000);
  });

  it('only X-RateLimit-Reset (unix seconds)', async () => {
    const reset = Math.floor(Date.now() / 1000) + 20;
    const client = await setup(() => ({
      status: 429,
      headers: { 'x-ratelimit-reset': String(reset), 'x-ratelimit-remaining': '0' },
    }));
    const err = await failure(client.run({ input: {} }));
    expect(err.retryAfterMs).toBeGreaterThan(15_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(20_000);
    expect(client.lastRateLimit).toMatchObject({ remaining: 0, resetAtMs: reset * 1000, httpStatus: 429 });
  });

  it('no hint → undefined; a past date → 0; an absurd one → clamped', async () => {
    const client = await setup(() => ({ status: 429 }));
    expect((await failure(client.run({ input: {} }))).retryAfterMs).toBeUndefined();
    server?.respond(() => ({ status: 429, headers: { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' } }));
    expect((await failure(client.run({ input: {} }))).retryAfterMs).toBe(0);
    server?.respond(() => ({ status: 429, headers: { 'retry-after': '99999999' } }));
    expect((await failure(client.run({ input: {} }))).retryAfterMs).toBe(DEFAULT_MAX_RETRY_AFTER_MS);
    server?.respond(() => ({ status: 429, headers: { 'retry-after': 'soon' } }));
    expect((await failure(client.run({ input: {} }))).retryAfterMs).toBeUndefined();
  });

  it('a 503 honours Retry-After too, but never a 400', async () => {
    const client = await setup(() => ({ status: 503, headers: { 'retry-after': '3' } }));
    expect((await failure(client.getTask('t'))).retryAfterMs).toBe(3000);
    server?.respond(() => ({ status: 400, headers: { 'retry-after': '3' } }));
    expect((await failure(client.getTask('t'))).retryAfterMs).toBeUndefined();
  });
});

describe('transport failures', () => {
  it('a server that never answers → PROVIDER_TIMEOUT', async () => {
    const client = await setup(() => ({ hang: true }), { requestTimeoutMs: 300 });
    expect(await failure(client.getTask('t'))).toMatchObject({
      code: 'PROVIDER_TIMEOUT',
      retryable: true,
      httpStatus: undefined,
    });
  }, 5_000);

  it('a body that stalls after the headers → PROVIDER_TIMEOUT', async () => {
    const client = await setup(() => ({ stallBody: true, body: { data: { id: 't' } } }), {
      requestTimeoutMs: 300,
    });
    expect(await failure(client.getTask('t'))).toMatchObject({ code: 'PROVIDER_TIMEOUT', retryable: true });
  }, 5_000);

  it('connection refused → retryable PROVIDER_UNAVAILABLE', async () => {
    client = createInferenceClient({ baseUrl: await refusedPortUrl(), apiKey: 'inf_k' });
    const err = await failure(client.run({ input: {} }));
    expect(err).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', retryable: true, httpStatus: undefined });
    expect(err.detail).toContain('ECONNREFUSED');
  });
});
