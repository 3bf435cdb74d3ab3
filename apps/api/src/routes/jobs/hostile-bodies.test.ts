import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, validJob } from '../../test/build-test-app.js';

// Bodies a client (or an attacker) may send: every one gets a 400-class answer in the API's error
// shape naming what is wrong, and none writes anything.

let app: FastifyInstance;
beforeAll(async () => {
  app = await buildTestApp({ AUTH_DISABLED: 'true', BODY_LIMIT_BYTES: '65536', MANIFEST_MAX_ROWS: '3' });
});
afterAll(async () => {
  await app.close();
});

const headers = { 'x-tenant': 'hostile' };
const jobCount = async () => (await app.recast.redis.keys(app.recast.keys.job('*'))).length;
const postJob = (payload: string | Buffer, extra: Record<string, string> = {}) =>
  app.inject({
    method: 'POST',
    url: '/v1/jobs',
    payload,
    headers: { ...headers, 'content-type': 'application/json', ...extra },
  });
const postManifest = (payload: string | Buffer, query = '', type = 'application/x-ndjson') =>
  app.inject({
    method: 'POST',
    url: `/v1/batches${query}`,
    payload,
    headers: { ...headers, 'content-type': type },
  });

/** The job as JSON text with `metadata` spliced in raw (so it can be what JSON.stringify cannot make). */
const withRawMetadata = (raw: string) => `${JSON.stringify(validJob).slice(0, -1)},"metadata":${raw}}`;
const deep = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
/** `{"custom_id":…,…,"instruction_prompt":"caf<0xE9> au lait"}`: invalid UTF-8 inside a string. */
const badUtf8Job = (extra: Record<string, unknown> = {}) =>
  Buffer.concat([
    Buffer.from(`${JSON.stringify({ ...extra, ...validJob }).slice(0, -1)},"instruction_prompt":"caf`),
    Buffer.from([0xe9]),
    Buffer.from(' au lait"}'),
  ]);

describe('metadata nested thousands of levels deep (a 27 KB body)', () => {
  it('is a 400 naming metadata on POST /v1/jobs, never a 500', async () => {
    const before = await jobCount();
    const body = withRawMetadata(deep(5000));
    expect(body.length).toBeGreaterThan(27_000);
    const res = await postJob(body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({
      code: 'VALIDATION_FAILED',
      issues: [{ path: 'metadata', message: 'must nest at most 32 levels deep' }],
    });
    expect(await jobCount()).toBe(before);
  });

  it('is a row error naming metadata in a manifest dry run, and a 400 as the batch metadata', async () => {
    const row = `{"custom_id":"deep",${withRawMetadata(deep(5000)).slice(1)}`;
    const res = await postManifest(`${row}\n${JSON.stringify(validJob)}\n`, '?dry_run=true');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      rows: 1,
      invalid_rows: 1,
      errors: [{ line: 1, custom_id: 'deep', path: 'metadata', message: 'must nest at most 32 levels deep' }],
    });
    const batchMetadata = await postManifest(
      `${JSON.stringify(validJob)}\n`,
      `?dry_run=true&metadata=${encodeURIComponent(deep(2000))}`,
    );
    expect(batchMetadata.statusCode).toBe(400);
    expect(batchMetadata.json().error.issues).toEqual([
      { path: 'metadata', message: 'must nest at most 32 levels deep' },
    ]);
  });
});

describe('a __proto__ key: one rule, a reserved key, never dropped', () => {
  it('refuses it in a JSON body, naming metadata.__proto__', async () => {
    const before = await jobCount();
    const res = await postJob(withRawMetadata('{"team":"ads","__proto__":{"admin":true}}'));
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({
      code: 'VALIDATION_FAILED',
      message: 'invalid request body: metadata.__proto__: reserved key',
      issues: [{ path: 'metadata.__proto__', message: 'reserved key' }],
    });
    expect(await jobCount()).toBe(before);
  });

  it('refuses it in the job field of a form the same way', async () => {
    const withUploads = await buildTestApp({
      AUTH_DISABLED: 'true',
      // File inputs on (the form is read); the job is refused before anything is uploaded.
      INFERENCE_API_KEY: 'inf_never_called',
      INFERENCE_API_URL: 'http://127.0.0.1:9',
    });
    try {
      const boundary = 'recast-test-boundary';
      const job = withRawMetadata('{"__proto__":{"admin":true}}');
      const res = await withUploads.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
        payload: `--${boundary}\r\nContent-Disposition: form-data; name="job"\r\n\r\n${job}\r\n--${boundary}--\r\n`,
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.issues).toEqual([{ path: 'metadata.__proto__', message: 'reserved key' }]);
    } finally {
      await withUploads.close();
    }
  });

  it('refuses it in a manifest row and in batch defaults the same way', async () => {
    const row = `{"custom_id":"p",${withRawMetadata('{"__proto__":{"admin":true}}').slice(1)}`;
    const res = await postManifest(`${row}\n`);
    expect(res.statusCode).toBe(422);
    expect(res.json().error.issues).toEqual([
      { line: 1, custom_id: 'p', path: 'metadata.__proto__', message: 'reserved key' },
    ]);
    const defaults = await postManifest(
      `${JSON.stringify(validJob)}\n`,
      `?defaults=${encodeURIComponent('{"metadata":{"__proto__":{}}}')}`,
    );
    expect(defaults.statusCode).toBe(400);
    expect(defaults.json().error.issues).toEqual([
      { path: 'defaults.metadata.__proto__', message: 'reserved key' },
    ]);
  });
});

describe('invalid UTF-8 inside a JSON string', () => {
  it('is refused naming the field on POST /v1/jobs, never stored as U+FFFD', async () => {
    const before = await jobCount();
    const res = await postJob(badUtf8Job());
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({
      code: 'VALIDATION_FAILED',
      issues: [{ path: 'instruction_prompt', message: 'invalid UTF-8' }],
    });
    expect(await jobCount()).toBe(before);
  });

  it('is refused naming the field in a manifest row too', async () => {
    const res = await postManifest(Buffer.concat([badUtf8Job({ custom_id: 'u' }), Buffer.from('\n')]));
    expect(res.statusCode).toBe(422);
    expect(res.json().error.issues).toEqual([
      { line: 1, custom_id: null, path: 'instruction_prompt', message: 'invalid UTF-8' },
    ]);
  });
});

describe('messages that say the limit, and target_fps as a number', () => {
  it('says the instruction_prompt limit', async () => {
    const res = await postJob(JSON.stringify({ ...validJob, instruction_prompt: 'x'.repeat(2001) }));
    expect(res.json().error.issues).toEqual([
      { path: 'instruction_prompt', message: 'must be at most 2000 characters' },
    ]);
  });

  it('accepts target_fps 24 and 48 as numbers and stores the app strings', async () => {
    for (const [fps, stored] of [
      [24, '24'],
      [48, '48'],
      ['24', '24'],
    ] as const) {
      const res = await postJob(JSON.stringify({ ...validJob, target_fps: fps }));
      expect(res.statusCode, String(fps)).toBe(202);
      expect(res.json().input.target_fps).toBe(stored);
    }
    const wrong = await postJob(JSON.stringify({ ...validJob, target_fps: 30 }));
    expect(wrong.json().error.issues).toEqual([
      { path: 'target_fps', message: 'must be "original", "24" or "48"' },
    ]);
  });
});

describe('stable codes for 413 and 415', () => {
  const cases: [string, number, string, () => ReturnType<typeof postJob>][] = [
    [
      'a JSON body over BODY_LIMIT_BYTES',
      413,
      'PAYLOAD_TOO_LARGE',
      () => postJob(JSON.stringify({ ...validJob, instruction_prompt: 'x'.repeat(70_000) })),
    ],
    [
      'a body type no route reads',
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      () => postJob('<job/>', { 'content-type': 'application/xml' }),
    ],
    [
      'a manifest of another type',
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      () => postManifest('{}', '', 'application/json'),
    ],
    [
      'a manifest over MANIFEST_MAX_ROWS',
      413,
      'MANIFEST_TOO_MANY_ROWS',
      () => postManifest(`${JSON.stringify(validJob)}\n`.repeat(4)),
    ],
    [
      'a manifest line over MANIFEST_MAX_LINE_BYTES',
      413,
      'MANIFEST_LINE_TOO_LONG',
      () => postManifest(`${JSON.stringify({ ...validJob, instruction_prompt: 'x'.repeat(70_000) })}\n`),
    ],
  ];
  it.each(cases)('%s is %i %s', async (_, status, code, send) => {
    const res = await send();
    expect(res.statusCode).toBe(status);
    expect(res.json().error.code).toBe(code);
  });
});

describe('a request Node itself cannot parse', () => {
  it('is answered in the API error shape, naming the header', async () => {
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = new URL(url);
    const raw =
      'POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
      'Idempotency-Key: abc\ndef\r\nContent-Length: 2\r\n\r\n{}';
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.write(raw));
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString();
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    const [head = '', body = ''] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    expect(head.toLowerCase()).toContain('content-type: application/json');
    expect(JSON.parse(body)).toEqual({
      error: {
        code: 'MALFORMED_REQUEST',
        message: expect.stringContaining('Idempotency-Key'),
        issues: [{ path: 'Idempotency-Key', message: expect.stringContaining('Missing expected CR') }],
      },
    });
  });
});
