import { waitFor } from '@recast/core/testing';
import { describe, expect, it } from 'vitest';
import { type System, systemPerTest } from './system.js';

const { start } = systemPerTest();
// The round trips run 10,000 rows each (BATCH_TEST_ROWS=1000 for a quicker local run).
const ROWS = Number(process.env.BATCH_TEST_ROWS ?? 10_000);

async function upload(s: System, body: string, contentType: string, query = '', tenant = 'default') {
  const res = await fetch(`${s.apiUrl}/v1/batches${query}`, {
    method: 'POST',
    headers: { 'content-type': contentType, 'x-tenant': tenant },
    body,
  });
  // biome-ignore lint/suspicious/noExplicitAny: a JSON answer, read field by field in assertions
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function get(s: System, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${s.apiUrl}${path}`, { headers });
  return { status: res.status, text: await res.text() };
}

function rows(s: System, n: number) {
  return Array.from({ length: n }, (_, i) => ({
    custom_id: `row-${i}`,
    video: s.fixture(i % 2 ? 'clip-2s-faststart.mp4' : 'clip-3s.mov'),
    images: [s.fixture('person-a.png')],
    resolution: i % 3 === 0 ? '1080p' : '720p',
    duration_seconds: i % 2 ? 2 : 3,
  }));
}

const jsonl = (objs: object[]) => `${objs.map((o) => JSON.stringify(o)).join('\n')}\n`;
const csv = (objs: ReturnType<typeof rows>) =>
  `custom_id,video,images,resolution,duration_seconds\r\n${objs
    .map((o) => [o.custom_id, o.video, o.images.join('|'), o.resolution, o.duration_seconds].join(','))
    .join('\r\n')}\r\n`;

async function batchKeys(s: System) {
  return (await s.redis.keys(`{${s.prefix}}:batch*`)).length + (await s.redis.keys(s.keys.job('*'))).length;
}

describe('batches', () => {
  for (const format of ['jsonl', 'csv'] as const) {
    it(`runs a ${ROWS}-row ${format} manifest to completed; results match the manifest row for row`, async () => {
      const s = await start({
        emulator: { stepMs: 1 },
        worker: {
          // The emulator here has no rate limits: neither do the submits nor the reads (each
          // settle confirms its task with one read; 10,000 of them at the documented 1,000 a
          // minute would take ten minutes).
          PROVIDER_SUBMITS_PER_WINDOW: '0',
          PROVIDER_READS_PER_WINDOW: '0',
          PROVIDER_MAX_IN_FLIGHT: '0',
          DISPATCH_CONCURRENCY: '16',
          SETTLE_CONCURRENCY: '32',
          FAIR_SHARE_BUFFER: '64',
        },
        api: { FAIR_SHARE_BUFFER: '64' },
      });
      const manifest = rows(s, ROWS);
      const res =
        format === 'jsonl'
          ? await upload(s, jsonl(manifest), 'application/x-ndjson', '?name=round-trip&max_cost_usd=2000')
          : await upload(s, csv(manifest), 'text/csv', '?name=round-trip&max_cost_usd=2000');
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({
        object: 'batch',
        rows: { total: ROWS, invalid: 0 },
        // 10,000 rows cost about $1,000: the batch budget leaves room.
        cost: { max_cost_usd: '2000.000000' },
      });
      const id = res.body.id as string;
      const done = await waitFor(
        async () => {
          const b = JSON.parse((await get(s, `/v1/batches/${id}`)).text);
          // Money settles right after a row's last move: wait for the last reservation to go too.
          return b.status === 'completed' && b.cost.reserved_micro_usd === 0 ? b : undefined;
        },
        { timeoutMs: 540_000, intervalMs: 500, what: 'batch completed' },
      );
      expect(done.counts.completed).toBe(ROWS);
      const bill = (await s.emulatorState()).bill;
      expect(done.cost.spent_micro_usd).toBe(bill.total_micro_usd);
      expect(done.cost.reserved_micro_usd).toBe(0);
      expect(done.finished_at).toBeTruthy();

      const results = (await get(s, `/v1/batches/${id}/results`)).text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(results).toHaveLength(ROWS);
      results.forEach((r, i) => {
        expect(r).toMatchObject({
          custom_id: `row-${i}`,
          line: format === 'jsonl' ? i + 1 : i + 2,
          state: 'completed',
          seconds: manifest[i]!.duration_seconds,
          output_video_url: expect.stringContaining('/outputs/'),
        });
      });
      const asCsv = (await get(s, `/v1/batches/${id}/results`, { accept: 'text/csv' })).text
        .trim()
        .split('\r\n');
      expect(asCsv[0]).toBe('custom_id,line,job_id,state,output_video_url,seconds,cost_micro_usd,error');
      expect(asCsv).toHaveLength(ROWS + 1);
    }, 600_000);
  }

  it('refuses a manifest with bad rows as a whole (atomic), naming every line, and creates nothing', async () => {
    const s = await start({ noWorker: true });
    const good = rows(s, 3);
    const bad = [
      JSON.stringify(good[0]),
      '{"video": "not json',
      JSON.stringify({ ...good[1], turbo: 'yes' }),
      JSON.stringify({ ...good[2], video: 'ftp://x/y.mp4' }),
      JSON.stringify({ ...good[2], custom_id: 'five', images: Array(5).fill(s.fixture('person-a.png')) }),
      JSON.stringify({ ...good[1], custom_id: 'row-0' }),
    ].join('\n');
    const before = await batchKeys(s);
    const res = await upload(s, bad, 'application/x-ndjson');
    expect(res.status).toBe(422);
    // Row errors are issues like any other, each with its line and custom_id.
    const errors = res.body.error.issues as { line: number; path: string }[];
    expect(errors.map((e) => [e.line, e.path])).toEqual([
      [2, expect.any(String)],
      [3, 'turbo'],
      [4, 'video'],
      [5, 'images'],
      [6, 'custom_id'],
    ]);
    expect(await batchKeys(s)).toBe(before);
    expect((await upload(s, '', 'application/x-ndjson')).status).toBe(400);
  });

  it('accepts the good rows in partial mode and reports the bad ones', async () => {
    const s = await start({ noWorker: true });
    const good = rows(s, 2);
    const res = await upload(
      s,
      jsonl([good[0]!, { ...good[1], seed: 1.5 }]),
      'application/x-ndjson',
      '?mode=partial',
    );
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ rows: { total: 1, invalid: 1 }, errors: [{ line: 2, path: 'seed' }] });
  });

  it('quotes a dry run without creating anything', async () => {
    const s = await start({ noWorker: true });
    const before = await batchKeys(s);
    const manifest = rows(s, 6).map(({ duration_seconds, ...r }, i) =>
      i < 3 ? r : { ...r, duration_seconds },
    );
    const res = await upload(s, jsonl(manifest), 'application/x-ndjson', '?dry_run=true');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      object: 'batch_quote',
      rows: 6,
      invalid_rows: 0,
      estimate_sources: { probe: 3, hint: 3 },
    });
    expect(res.body.estimated_micro_usd).toBe(
      Object.values(res.body.by_resolution as Record<string, { micro_usd: number }>).reduce(
        (a, r) => a + r.micro_usd,
        0,
      ),
    );
    expect(await batchKeys(s)).toBe(before);
  });

  it('answers 413 naming the limit for a manifest over the row or byte limit', async () => {
    const s = await start({ noWorker: true, api: { MANIFEST_MAX_ROWS: '5', MANIFEST_MAX_BYTES: '4096' } });
    const tooMany = await upload(s, jsonl(rows(s, 6)), 'application/x-ndjson');
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.error.message).toMatch(/rows/);
    const tooBig = await upload(s, `${' '.repeat(5000)}\n`, 'application/x-ndjson');
    expect(tooBig.status).toBe(413);
    expect(await batchKeys(s)).toBe(0);
  });

  it('cancels a running batch: queued jobs at once, running ones at the provider; ledger = bill', async () => {
    const s = await start({
      emulator: { stepMs: 200 },
      worker: { PROVIDER_MAX_IN_FLIGHT: '4', PROVIDER_SUBMITS_PER_WINDOW: '0' },
    });
    const res = await upload(s, jsonl(rows(s, 40)), 'application/x-ndjson');
    const id = res.body.id as string;
    await waitFor(async () => {
      const { counts } = JSON.parse((await get(s, `/v1/batches/${id}`)).text);
      return counts.submitted + counts.running > 0;
    });
    const cancel = await fetch(`${s.apiUrl}/v1/batches/${id}/cancel`, { method: 'POST' });
    // biome-ignore lint/suspicious/noExplicitAny: a JSON answer, read field by field in assertions
    const body = (await cancel.json()) as Record<string, any>;
    expect(cancel.status).toBe(202);
    expect(body.cancel.cancelled_before_spend).toBeGreaterThan(20);
    expect(
      body.cancel.cancelled_before_spend + body.cancel.cancelling_at_provider + body.cancel.already_finished,
    ).toBe(40);
    const done = await waitFor(async () => {
      const b = JSON.parse((await get(s, `/v1/batches/${id}`)).text);
      // Money settles right after a row's last move: wait for the last reservation to go too.
      return b.status === 'cancelled' && b.cost.reserved_micro_usd === 0 ? b : undefined;
    });
    expect(done.cost.reserved_micro_usd).toBe(0);
    expect(done.cost.spent_micro_usd).toBe((await s.emulatorState()).bill.total_micro_usd);
    // Afterwards the batch says how many went before any spend, and how many were billed anyway
    // (the emulator bills a cancelled task nothing: those billed are the ones that completed
    // before the cancel reached them).
    const finishedBefore = body.cancel.already_finished as number;
    expect(done.cancelled).toEqual({
      before_spend: done.counts.cancelled,
      billed: done.counts.completed - finishedBefore,
    });
    expect(done.cancelled.before_spend).toBeGreaterThanOrEqual(body.cancel.cancelled_before_spend);
  });

  it('hides other tenants\u2019 batches', async () => {
    const s = await start({ noWorker: true });
    const res = await upload(s, jsonl(rows(s, 1)), 'application/x-ndjson', '', 'owner');
    expect((await get(s, `/v1/batches/${res.body.id}`, { 'x-tenant': 'owner' })).status).toBe(200);
    expect((await get(s, `/v1/batches/${res.body.id}`, { 'x-tenant': 'other' })).status).toBe(404);
    expect(JSON.parse((await get(s, '/v1/batches', { 'x-tenant': 'other' })).text).data).toEqual([]);
    expect(JSON.parse((await get(s, '/v1/batches', { 'x-tenant': 'owner' })).text).data).toHaveLength(1);
  });
});
