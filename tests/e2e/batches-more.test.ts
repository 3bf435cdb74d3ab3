import { request } from 'node:http';
import { Readable } from 'node:stream';
import { verifyWebhook } from '@recast/core/callbacks';
import { startTestReceiver, waitFor } from '@recast/core/testing';
import { describe, expect, it } from 'vitest';
import { type System, systemPerTest } from './system.js';

const { start, onCleanup } = systemPerTest();

// biome-ignore lint/suspicious/noExplicitAny: JSON answers are checked field by field below.
type Json = Record<string, any>;

function rows(s: System, n: number, extra: (i: number) => Json = () => ({})) {
  return Array.from({ length: n }, (_, i) => ({
    custom_id: `row-${i}`,
    video: s.fixture('clip-2s-faststart.mp4'),
    images: [s.fixture('person-a.png')],
    resolution: i % 2 ? '1080p' : '720p',
    duration_seconds: 2,
    ...extra(i),
  }));
}
const jsonl = (objs: object[]) => `${objs.map((o) => JSON.stringify(o)).join('\n')}\n`;

async function upload(
  s: System,
  body: string | FormData | ReadableStream<Uint8Array>,
  contentType?: string,
  query = '',
) {
  const res = await fetch(`${s.apiUrl}/v1/batches${query}`, {
    method: 'POST',
    headers: contentType ? { 'content-type': contentType } : {},
    body,
    ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
  } as RequestInit);
  return { status: res.status, body: (await res.json()) as Json };
}

async function getJson(s: System, path: string) {
  return (await (await fetch(`${s.apiUrl}${path}`)).json()) as Json;
}

/** Everything a batch upload could have left in Redis: batch records, job records, lines. */
async function leftovers(s: System): Promise<number> {
  const tag = `{${s.prefix}}`;
  const keys = await Promise.all(
    [`${tag}:batch*`, `${tag}:job:*`, `${tag}:fair:line:*`].map((p) => s.redis.keys(p)),
  );
  return keys.flat().length;
}

async function waitStatus(s: System, id: string, status: string, timeoutMs = 60_000): Promise<Json> {
  return waitFor(
    async () => {
      const b = await getJson(s, `/v1/batches/${id}`);
      // The last row's money settles right after its move (reserved goes to spent in one step).
      return b.status === status && b.cost.reserved_micro_usd === 0 ? b : undefined;
    },
    { timeoutMs, intervalMs: 200, what: `batch ${status}` },
  );
}

describe('batch uploads', () => {
  it('takes a manifest as a multipart file field, batch fields from the form, JSONL or CSV', async () => {
    const s = await start({ noWorker: true });
    const form = new FormData();
    form.set('name', 'from-a-form');
    form.set('defaults', JSON.stringify({ resolution: '1080p' }));
    form.set('max_cost_usd', '5');
    const manifest = rows(s, 3).map(({ resolution: _, ...r }) => r);
    form.set('file', new Blob([jsonl(manifest)], { type: 'application/octet-stream' }), 'rows.jsonl');
    const res = await upload(s, form);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      name: 'from-a-form',
      rows: { total: 3 },
      cost: { estimated_micro_usd: 3 * 2 * 60_000, max_cost_usd: '5.000000' },
    });

    const csv = new FormData();
    csv.set(
      'file',
      new Blob(
        [`video,images_1,duration_seconds\r\n${s.fixture('clip-3s.mov')},${s.fixture('person-a.png')},3\r\n`],
        {
          type: 'text/csv',
        },
      ),
      'rows.bin',
    );
    const fromCsv = await upload(s, csv, undefined, '?mode=partial');
    expect(fromCsv).toMatchObject({ status: 202, body: { mode: 'partial', rows: { total: 1 } } });

    // No file, a field given twice, an unknown format: clear errors, nothing created.
    const before = await leftovers(s);
    const noFile = new FormData();
    noFile.set('name', 'x');
    expect(await upload(s, noFile)).toMatchObject({
      status: 400,
      body: { error: { issues: [{ path: 'file' }] } },
    });
    const twice = new FormData();
    twice.set('name', 'x');
    twice.set('file', new Blob([jsonl(manifest)]), 'a.jsonl');
    expect(await upload(s, twice, undefined, '?name=y')).toMatchObject({
      status: 400,
      body: { error: { issues: [{ path: 'name' }] } },
    });
    const unknown = new FormData();
    unknown.set('file', new Blob([jsonl(manifest)], { type: 'text/plain' }), 'rows.txt');
    expect((await upload(s, unknown)).status).toBe(415);
    expect(await leftovers(s)).toBe(before);
  });

  it('reads BOM and CRLF, and names the line and field of a URL it may not fetch', async () => {
    const s = await start({ noWorker: true });
    const [a, b] = rows(s, 2);
    const body = `\uFEFF${JSON.stringify(a)}\r\n\r\n${JSON.stringify(b)}\r\n`;
    const ok = await upload(s, body, 'application/x-ndjson', '?dry_run=true');
    expect(ok).toMatchObject({ status: 200, body: { rows: 2, invalid_rows: 0 } });

    // No duration hint: Recast would probe it, and a private address is refused, as a row error.
    const { duration_seconds: _, ...noHint } = a!;
    const bad = jsonl([a!, { ...noHint, custom_id: 'private', video: 'http://10.1.2.3/a.mp4' }]);
    const before = await leftovers(s);
    const refused = await upload(s, bad, 'application/x-ndjson');
    expect(refused.status).toBe(422);
    expect(refused.body.error.issues).toEqual([
      expect.objectContaining({ line: 2, custom_id: 'private', path: 'video' }),
    ]);
    expect(await leftovers(s)).toBe(before);
  });

  it('refuses a 2 GB stream as soon as it passes the byte limit, and a cut-off upload leaves nothing', async () => {
    const s = await start({ noWorker: true, api: { MANIFEST_MAX_BYTES: String(1024 * 1024) } });
    const line = Buffer.from(`${JSON.stringify(rows(s, 1)[0])}\n`);
    const total = Math.ceil((2 * 1024 ** 3) / line.length);
    let sent = 0;
    const huge = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ >= total) controller.close();
        else controller.enqueue(line);
      },
    });
    const res = await upload(s, huge, 'application/x-ndjson');
    expect(res.status).toBe(413);
    expect(res.body.error.message).toContain('MANIFEST_MAX_BYTES');
    expect(sent * line.length).toBeLessThan(64 * 1024 * 1024);
    expect(await leftovers(s)).toBe(0);

    // A client that goes away mid-upload: the staged batch and its jobs are removed.
    const { port } = new URL(s.apiUrl);
    const req = request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/v1/batches',
      headers: { 'content-type': 'application/x-ndjson', 'content-length': String(line.length * 5000) },
    });
    req.on('error', () => {});
    Readable.from(Array.from({ length: 2000 }, () => line)).pipe(req, { end: false });
    await waitFor(async () => (await s.redis.zcard(s.keys.batchesStaging())) > 0, { what: 'upload staged' });
    await new Promise((r) => setTimeout(r, 200));
    req.destroy();
    await waitFor(async () => (await leftovers(s)) === 0, { what: 'staged upload removed' });
    expect((await getJson(s, '/v1/batches')).data).toEqual([]);
  });

  it('quotes whether a manifest fits the tenant’s budgets and its own max_cost_usd', async () => {
    const s = await start({ noWorker: true });
    await s.budgets.setLimit('tenant:default', 'daily', 500_000);
    const manifest = jsonl(rows(s, 4)); // 2 × 2 s × $0.03 + 2 × 2 s × $0.06 = $0.36
    const fits = await upload(s, manifest, 'application/x-ndjson', '?dry_run=true&max_cost_usd=1');
    expect(fits.body).toMatchObject({
      estimated_micro_usd: 360_000,
      budgets: {
        fits: true,
        checks: [
          { scope: 'tenant:default', window: 'daily', available_micro_usd: 500_000, fits: true },
          { scope: 'batch', window: 'lifetime', limit_micro_usd: 1_000_000, fits: true },
        ],
      },
    });
    const tooMuch = await upload(s, manifest, 'application/x-ndjson', '?dry_run=true&max_cost_usd=0.3');
    expect(tooMuch.body.budgets).toMatchObject({ fits: false, checks: [{ fits: true }, { fits: false }] });
    await s.budgets.setLimit('global', 'monthly', 100_000);
    const global = await upload(s, manifest, 'application/x-ndjson', '?dry_run=true');
    expect(global.body.budgets).toMatchObject({
      fits: false,
      checks: [{ scope: 'global', window: 'monthly', fits: false }, { scope: 'tenant:default' }],
    });
  });
});

describe('batch lifecycle', () => {
  const secrets = ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'];

  it('POSTs one signed batch callback when the batch finishes, and again after a retry finishes it', async () => {
    const receiver = await startTestReceiver();
    onCleanup(() => receiver.close());
    const env = { CALLBACK_SECRETS: secrets.join(','), SSRF_ALLOW_HOSTS: receiver.host };
    const s = await start({
      emulator: { stepMs: 5, faults: { failureRate: 1 } },
      worker: { ...env, PROVIDER_SUBMITS_PER_WINDOW: '0' },
      // The API allows the receiver besides the emulator, whose fixtures every row names.
      api: { CALLBACK_SECRETS: env.CALLBACK_SECRETS },
      allowHosts: [receiver.host],
    });
    const hook = receiver.url('/hooks/batch');
    const res = await upload(
      s,
      jsonl(rows(s, 6)),
      'application/x-ndjson',
      `?callback_url=${encodeURIComponent(hook)}`,
    );
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    await waitStatus(s, id, 'completed_with_errors');
    const [first] = await waitFor(() => {
      const got = receiver.received('/hooks/batch');
      return got.length > 0 ? got : undefined;
    });
    expect(verifyWebhook({ headers: first!.headers as never, body: first!.body, secrets }).ok).toBe(true);
    expect(JSON.parse(first!.body)).toMatchObject({
      type: 'batch.completed_with_errors',
      data: { id, status: 'completed_with_errors', counts: { failed: 6 } },
    });

    await s.setFaults({ failureRate: 0 });
    const retry = await fetch(`${s.apiUrl}/v1/batches/${id}/retry`, { method: 'POST' });
    expect(retry.status).toBe(202);
    expect(((await retry.json()) as Json).retry).toEqual({ retried: 6, skipped: 0 });
    const done = await waitStatus(s, id, 'completed');
    const second = await waitFor(() => {
      const got = receiver.received('/hooks/batch');
      return got.length > 1 ? got[1] : undefined;
    });
    expect(JSON.parse(second.body)).toMatchObject({
      type: 'batch.completed',
      data: { id, counts: { completed: 6 } },
    });
    await s.drained();
    expect(receiver.received('/hooks/batch')).toHaveLength(2);
    // Each row billed once, on its successful run; the failed runs billed nothing.
    const bill = (await s.emulatorState()).bill;
    expect(done.cost).toMatchObject({ spent_micro_usd: bill.total_micro_usd, reserved_micro_usd: 0 });
    expect(done.seconds_by_resolution.billed).toEqual({ '720p': 6, '1080p': 6 });
  });

  it('retries failed rows within the batch budget; the ledger matches the bill', async () => {
    const s = await start({
      emulator: { stepMs: 5, faults: { failureRate: 1 } },
      worker: { PROVIDER_SUBMITS_PER_WINDOW: '0' },
    });
    // 10 rows × 2 s: 5 at 720p ($0.06 each) and 5 at 1080p ($0.12 each) = $0.90 in all.
    const res = await upload(s, jsonl(rows(s, 10)), 'application/x-ndjson', '?max_cost_usd=0.5');
    const id = res.body.id as string;
    await waitStatus(s, id, 'completed_with_errors');
    await s.setFaults({ failureRate: 0 });
    await fetch(`${s.apiUrl}/v1/batches/${id}/retry`, { method: 'POST' });
    // Only what fits $0.50 runs; the rest waits for money, and the batch budget is never passed.
    await waitFor(async () => {
      const b = await getJson(s, `/v1/batches/${id}`);
      const { waiting_budget, queued, submitting, submitted, running } = b.counts;
      return waiting_budget > 0 && queued + submitting + submitted + running === 0;
    });
    const partway = await getJson(s, `/v1/batches/${id}`);
    expect(partway.cost.spent_micro_usd + partway.cost.reserved_micro_usd).toBeLessThanOrEqual(500_000);
    expect(partway.cost.spent_micro_usd).toBe((await s.emulatorState()).bill.total_micro_usd);
    await s.budgets.setLimit(`batch:${id}`, 'lifetime', 1_000_000);
    const done = await waitStatus(s, id, 'completed');
    expect(done.cost.spent_micro_usd).toBe(900_000);
    expect(done.cost.spent_micro_usd).toBe((await s.emulatorState()).bill.total_micro_usd);
    const byBatch = await s.costs(['batch']);
    expect(byBatch.rows).toEqual([expect.objectContaining({ batch: id, micro_usd: 900_000, jobs: 10 })]);
  });
});
