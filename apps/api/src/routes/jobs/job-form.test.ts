import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, validJob } from '../../test/build-test-app.js';

// Core's media fixtures (the API depends on core; the emulator is another app).
const FIXTURES = new URL('../../../../../packages/core/test-fixtures/', import.meta.url);
const png = readFileSync(new URL('person-a.png', FIXTURES));
const uploads = mkdtempSync(join(tmpdir(), 'recast-api-form-'));

/** A multipart body by hand: parts in the given order, files as raw bytes. */
function multipart(
  parts: ({ name: string; value: string } | { name: string; filename: string; bytes: Buffer })[],
) {
  const boundary = 'test-boundary-7f3a';
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition =
      'filename' in part
        ? `form-data; name="${part.name}"; filename="${part.filename}"\r\nContent-Type: application/octet-stream`
        : `form-data; name="${part.name}"`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n\r\n`));
    chunks.push('filename' in part ? part.bytes : Buffer.from(part.value));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return {
    payload: Buffer.concat(chunks),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  };
}

let off: FastifyInstance;
let on: FastifyInstance;
beforeAll(async () => {
  // Tenants named by X-Tenant: what is tested here is forms, not keys (see access.test.ts).
  off = await buildTestApp({ AUTH_DISABLED: 'true' });
  // Uploads on, with a provider nobody answers at: every case here is refused before an upload.
  on = await buildTestApp({
    AUTH_DISABLED: 'true',
    INFERENCE_API_KEY: 'inf_test',
    INFERENCE_API_URL: 'http://127.0.0.1:9',
    UPLOAD_TMP_DIR: uploads,
  });
});
afterAll(async () => {
  await Promise.all([off.close(), on.close()]);
  rmSync(uploads, { recursive: true, force: true });
});

const issue = (res: { json(): unknown }) =>
  (res.json() as { error: { code: string; issues?: { path: string }[] } }).error;

describe('file inputs refused before anything is uploaded', () => {
  it('says file uploads are off when the API has no provider key', async () => {
    const form = multipart([
      { name: 'job', value: JSON.stringify({ images: validJob.images }) },
      { name: 'video', filename: 'a.mp4', bytes: png },
    ]);
    const res = await off.inject({ method: 'POST', url: '/v1/jobs', ...form });
    expect(res.statusCode).toBe(400);
    expect(issue(res)).toMatchObject({ code: 'FILE_UPLOADS_DISABLED', issues: [{ path: 'video' }] });
    const dataUri = await off.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: {
        ...validJob,
        images: [validJob.images[0], `data:image/png;base64,${png.toString('base64')}`],
      },
    });
    expect(issue(dataUri)).toMatchObject({ code: 'FILE_UPLOADS_DISABLED', issues: [{ path: 'images[1]' }] });
    const file = await off.inject({
      method: 'POST',
      url: '/v1/files',
      ...multipart([{ name: 'file', filename: 'a.png', bytes: png }]),
    });
    expect(issue(file).code).toBe('FILE_UPLOADS_DISABLED');
  });

  it('names the part or field of a malformed form', async () => {
    const cases: [Parameters<typeof multipart>[0], string, string][] = [
      [[{ name: 'images[]', filename: 'a.png', bytes: png }], 'job', 'VALIDATION_FAILED'],
      [[{ name: 'job', value: '{nope' }], 'job', 'VALIDATION_FAILED'],
      [[{ name: 'job', value: '[1]' }], 'job', 'VALIDATION_FAILED'],
      [
        [
          { name: 'job', value: '{}' },
          { name: 'extra', value: 'x' },
        ],
        'extra',
        'VALIDATION_FAILED',
      ],
      [
        [
          { name: 'job', value: '{}' },
          { name: 'picture', filename: 'a.png', bytes: png },
        ],
        'picture',
        'VALIDATION_FAILED',
      ],
      [
        [
          { name: 'job', value: JSON.stringify({ video: validJob.video }) },
          {
            name: 'video',
            filename: 'a.mp4',
            bytes: readFileSync(new URL('clip-2s-faststart.mp4', FIXTURES)),
          },
        ],
        'video',
        'VALIDATION_FAILED',
      ],
      [
        [
          { name: 'job', value: JSON.stringify({ video: validJob.video, images: [validJob.images[0]] }) },
          { name: 'images[]', filename: 'b.png', bytes: Buffer.from('GIF89a not accepted') },
        ],
        'images[1]',
        'FILE_TYPE_UNSUPPORTED',
      ],
    ];
    for (const [parts, path, code] of cases) {
      const res = await on.inject({ method: 'POST', url: '/v1/jobs', ...multipart(parts) });
      expect({ path, status: res.statusCode < 500, error: issue(res) }).toMatchObject({
        path,
        status: true,
        error: { code, issues: [{ path }] },
      });
    }
    expect(readdirSync(uploads)).toEqual([]);
  });

  it('refuses a reserved placeholder URL that stands for no file of the request', async () => {
    const res = await on.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: { ...validJob, images: [`https://upload.recast.invalid/sha256/${'0'.repeat(64)}`] },
    });
    expect(res.statusCode).toBe(400);
    expect(issue(res)).toMatchObject({ code: 'VALIDATION_FAILED', issues: [{ path: 'images[0]' }] });
  });

  it('answers 404 OUTPUT_NOT_RETAINED for a job of this tenant with no kept output, 404 NOT_FOUND for others', async () => {
    const job = (await on.inject({ method: 'POST', url: '/v1/jobs', payload: validJob })).json() as {
      id: string;
    };
    const own = await on.inject({ method: 'GET', url: `/v1/jobs/${job.id}/output` });
    expect(own.statusCode).toBe(404);
    expect(issue(own).code).toBe('OUTPUT_NOT_RETAINED');
    const other = await on.inject({
      method: 'GET',
      url: `/v1/jobs/${job.id}/output`,
      headers: { 'x-tenant': 'b' },
    });
    expect(issue(other).code).toBe('NOT_FOUND');
  });
});
