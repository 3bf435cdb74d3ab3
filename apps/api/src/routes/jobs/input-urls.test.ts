import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, validJob } from '../../test/build-test-app.js';

// Every URL of a job goes to the provider, so each is checked like one Recast fetches, even when
// a duration hint means Recast fetches nothing (testLookup answers for the made-up hosts).
const REFUSED = [
  ['http://169.254.169.254/latest/meta-data/', /cloud metadata/],
  ['http://127.0.0.1:6379/', /loopback/],
  ['http://10.0.0.1/clip.mp4', /private network/],
  ['http://[::1]/clip.mp4', /loopback/],
  ['https://nas.intranet.example.org/clip.mp4', /resolves to 10\.20\.30\.40, a private network address/],
  ['https://no-such-host.test/clip.mp4', /could not resolve host/],
] as const;

let app: FastifyInstance;
let allowing: FastifyInstance;
beforeAll(async () => {
  app = await buildTestApp({ AUTH_DISABLED: 'true' });
  allowing = await buildTestApp({ AUTH_DISABLED: 'true', SSRF_ALLOW_HOSTS: '10.0.0.1,127.0.0.1:6379' });
});
afterAll(async () => {
  await app.close();
  await allowing.close();
});

const jobCount = async (a: FastifyInstance) => (await a.recast.redis.keys(a.recast.keys.job('*'))).length;
const post = (a: FastifyInstance, payload: object) =>
  a.inject({ method: 'POST', url: '/v1/jobs', payload, headers: { 'x-tenant': 'ssrf' } });

describe('URL fields of a job with a duration hint (nothing fetched)', () => {
  it.each(REFUSED)('refuses video %s with URL_REFUSED naming video, writing nothing', async (url, reason) => {
    const before = await jobCount(app);
    const res = await post(app, { ...validJob, video: url });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({
      code: 'URL_REFUSED',
      issues: [{ path: 'video', message: expect.stringMatching(reason) }],
    });
    expect(await jobCount(app)).toBe(before);
  });

  it.each(REFUSED)('refuses an image %s naming its index', async (url, reason) => {
    const res = await post(app, { ...validJob, images: [validJob.images[0], url] });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({
      code: 'URL_REFUSED',
      issues: [{ path: 'images.1', message: expect.stringMatching(reason) }],
    });
  });

  it('takes a public host, and the hosts SSRF_ALLOW_HOSTS names', async () => {
    expect((await post(app, validJob)).statusCode).toBe(202);
    const allowed = await post(allowing, {
      ...validJob,
      video: 'http://10.0.0.1/clip.mp4',
      images: ['http://127.0.0.1:6379/a.png'],
    });
    expect(allowed.statusCode).toBe(202);
    // Only the names listed: another port of the same address is still refused.
    const other = await post(allowing, { ...validJob, images: ['http://127.0.0.1:6380/a.png'] });
    expect(other.json().error).toMatchObject({ code: 'URL_REFUSED', issues: [{ path: 'images.0' }] });
  });
});

describe('URL fields of manifest rows with a duration hint', () => {
  it('makes each refused URL a row error naming its line and field; partial mode runs the rest', async () => {
    const rows = [
      { custom_id: 'ok', ...validJob },
      { custom_id: 'meta', ...validJob, video: 'http://169.254.169.254/latest/' },
      { custom_id: 'redis', ...validJob, images: ['http://127.0.0.1:6379/'] },
      { custom_id: 'lan', ...validJob, video: 'http://10.0.0.1/' },
    ];
    const res = await app.inject({
      method: 'POST',
      url: '/v1/batches?mode=partial',
      payload: rows.map((r) => JSON.stringify(r)).join('\n'),
      headers: { 'content-type': 'application/x-ndjson', 'x-tenant': 'ssrf' },
    });
    expect(res.statusCode).toBe(202);
    const batch = res.json();
    expect(batch.rows).toEqual({ total: 1, invalid: 3 });
    expect(
      batch.errors.map((e: { line: number; custom_id: string; path: string }) => [
        e.line,
        e.custom_id,
        e.path,
      ]),
    ).toEqual([
      [2, 'meta', 'video'],
      [3, 'redis', 'images.0'],
      [4, 'lan', 'video'],
    ]);
    expect(batch.errors[0].message).toMatch(/cloud metadata/);
  });
});
