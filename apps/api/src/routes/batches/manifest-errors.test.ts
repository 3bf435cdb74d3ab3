import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, validJob } from '../../test/build-test-app.js';

let app: FastifyInstance;
beforeAll(async () => {
  app = await buildTestApp({ AUTH_DISABLED: 'true' });
});
afterAll(async () => {
  await app.close();
});

const headers = { 'x-tenant': 'csv', 'content-type': 'text/csv' };
const row = (id: string, images = validJob.images[0]) => `${id},${validJob.video},${images},4`;

describe('a CSV manifest with an unclosed quote', () => {
  // Line 3 has no image; line 4 opens a quote that never closes, swallowing line 5 and the rest.
  const csv = [
    'custom_id,video,images,duration_seconds',
    row('a'),
    row('b', ''),
    `"c,${validJob.video},${validJob.images[0]},4`,
    row('d'),
    '',
  ].join('\n');

  it('is one row error on its line, after every other bad row, in the one row-error shape (atomic: 422)', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/batches', payload: csv, headers });
    expect(res.statusCode).toBe(422);
    const { error } = res.json();
    expect(error.issues).toEqual([
      {
        line: 3,
        custom_id: 'b',
        path: 'images',
        message: expect.stringContaining('the images cell is empty'),
      },
      {
        line: 4,
        custom_id: null,
        path: '(line)',
        message:
          'invalid CSV: a quoted cell opened on this line is never closed; the rest of the file after line 4 could not be read',
      },
    ]);
    expect(error.details).toEqual({ invalid_rows: 2, errors_truncated: false });
  });

  it('runs the good rows before it in partial mode', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/batches?mode=partial', payload: csv, headers });
    expect(res.statusCode).toBe(202);
    const batch = res.json();
    expect(batch.rows).toEqual({ total: 1, invalid: 2 });
    expect(batch.errors.map((e: { line: number }) => e.line)).toEqual([3, 4]);
    const jobs = await app.inject({ url: `/v1/batches/${batch.id}/jobs`, headers: { 'x-tenant': 'csv' } });
    expect(jobs.json().data.map((j: { custom_id: string; line: number }) => [j.custom_id, j.line])).toEqual([
      ['a', 2],
    ]);
  });
});
