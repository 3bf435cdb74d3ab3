import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, TEST_ADMIN_KEY, validJob } from './test/build-test-app.js';

let app: FastifyInstance;
const auth = { authorization: `Bearer ${TEST_ADMIN_KEY}` };
const ROWS = 250;
let batchId = '';

beforeAll(async () => {
  app = await buildTestApp({ RATE_LIMIT_MAX: '0' });
  const manifest = Array.from({ length: ROWS }, (_, i) =>
    JSON.stringify({ ...validJob, custom_id: `row-${i + 1}` }),
  );
  const res = await app.inject({
    method: 'POST',
    url: '/v1/batches',
    headers: { ...auth, 'content-type': 'application/x-ndjson' },
    payload: `${manifest.join('\n')}\n`,
  });
  expect(res.statusCode).toBe(202);
  batchId = res.json().id;
});
afterAll(async () => {
  await app.close();
});

/** Follow next_cursor from the first page to the end; every page's rows, in order. */
async function everyPage(query: string): Promise<{ pages: number; rows: { id: string; line: number }[] }> {
  const rows: { id: string; line: number }[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res = await app.inject({
      method: 'GET',
      url: `/v1/batches/${batchId}/jobs?${query}${cursor ? `&cursor=${cursor}` : ''}`,
      headers: auth,
    });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { data: { id: string; line: number }[]; next_cursor: string | null };
    rows.push(...body.data);
    cursor = body.next_cursor;
    pages++;
  } while (cursor && pages < 1000);
  return { pages, rows };
}

describe('GET /v1/batches/:id/jobs paging', () => {
  it('pages every row once, in line order', async () => {
    const { rows } = await everyPage('limit=100');
    expect(rows.map((r) => r.line)).toEqual(Array.from({ length: ROWS }, (_, i) => i + 1));
  });

  it('finds a match past the read-ahead of one request: a short page still names the next one', async () => {
    const { rows } = await everyPage('limit=100');
    const last = rows.at(-1)!;
    const moved = await app.recast.store.transition(
      last.id,
      'failed',
      { error_code: 'PROVIDER_TASK_FAILED', error_message: 'x', finished_at: new Date().toISOString() },
      { from: ['queued'] },
    );
    expect(moved.ok).toBe(true);
    // limit=1: one request reads ahead at most 100 rows, and the failed row is the 250th.
    const failed = await everyPage('limit=1&state=failed');
    expect(failed.rows.map((r) => r.id)).toEqual([last.id]);
    expect(failed.pages).toBeGreaterThan(2);
  });
});

describe('POST /v1/batches content types', () => {
  it('takes a JSONL manifest under each of its usual content types', async () => {
    for (const type of [
      'application/x-ndjson',
      'application/ndjson',
      'application/jsonl',
      'application/x-jsonlines',
    ]) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/batches?dry_run=true',
        headers: { ...auth, 'content-type': type },
        payload: `${JSON.stringify(validJob)}\n`,
      });
      expect({ type, status: res.statusCode }).toEqual({ type, status: 200 });
    }
  });
});
