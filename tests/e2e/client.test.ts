import { openAsBlob } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import {
  createRecastClient,
  FINISHED_BATCH_STATUSES,
  type Job,
  RecastApiError,
  type RecastEvent,
  RecastNetworkError,
  TERMINAL_JOB_STATES,
} from '@recast/client';
import { FINISHED_BATCH_STATUSES as CORE_FINISHED, TERMINAL_STATES } from '@recast/core/contract';
import { freePort } from '@recast/core/testing/servers';
import { describe, expect, it } from 'vitest';
import { ADMIN_KEY, type System, systemPerTest } from './system.js';

const FIXTURES = resolve(import.meta.dirname, '../../apps/emulator/fixtures');
const { start } = systemPerTest();

const fast = { emulator: { stepMs: 5 }, worker: { PROVIDER_SUBMITS_PER_WINDOW: '0' } };

function clientOf(s: System) {
  return createRecastClient({ baseUrl: s.apiUrl, apiKey: ADMIN_KEY, userAgent: 'recast-client-test' });
}

function manifest(s: System, rows: number): string {
  const job = { video: s.fixture('clip-2s-faststart.mp4'), images: [s.fixture('person-a.png')] };
  return Array.from(
    { length: rows },
    (_, i) => `${JSON.stringify({ ...job, custom_id: `row-${i}` })}\n`,
  ).join('');
}

describe('@recast/client against a running Recast', () => {
  it("knows the contract's terminal states", () => {
    expect([...TERMINAL_JOB_STATES].sort()).toEqual([...TERMINAL_STATES].sort());
    expect([...FINISHED_BATCH_STATUSES].sort()).toEqual([...CORE_FINISHED].sort());
  });

  it('submits with an idempotency key, polls with If-None-Match until terminal, and types its errors', async () => {
    const s = await start({ auth: true, ...fast });
    const client = clientOf(s);
    const body = { video: s.fixture('clip-2s-faststart.mp4'), images: [s.fixture('person-a.png')] };

    const first = await client.submitJob(body, { idempotencyKey: 'order-1' });
    const again = await client.submitJob(body, { idempotencyKey: 'order-1' });
    expect(first.created).toBe(true);
    expect(again).toMatchObject({ created: false, job: { id: first.job.id } });
    const reused = await client
      .submitJob({ ...body, resolution: '1080p' }, { idempotencyKey: 'order-1' })
      .catch((err: unknown) => err);
    expect(reused).toBeInstanceOf(RecastApiError);
    expect((reused as RecastApiError).code).toBe('IDEMPOTENCY_KEY_REUSED');

    const seen: Job['state'][] = [];
    const done = await client.waitForJob(first.job.id, {
      intervalMs: 20,
      onUpdate: (job) => {
        seen.push(job.state);
      },
    });
    expect(done.state).toBe('completed');
    expect(seen.at(-1)).toBe('completed');
    // Each version is heard once: unchanged polls are 304s, not repeats.
    expect(new Set(seen).size).toBe(seen.length);
    const timeline = await client.getJobTimeline(done.id);
    expect(timeline.states.map((entry) => entry.state).at(-1)).toBe('completed');
    expect(timeline.provider?.task_id).toBe(done.provider?.task_id);

    // The ETag it polls with is the API's: a conditional read of the current version is a 304.
    const current = await client.sendFull(
      client.api.GET('/v1/jobs/{id}', { params: { path: { id: done.id } } }),
    );
    const etag = current.response.headers.get('etag');
    expect(etag).toBeTruthy();
    const unchanged = await client.sendIfModified(
      client.api.GET('/v1/jobs/{id}', {
        params: { path: { id: done.id }, header: { 'if-none-match': etag! } },
      }),
    );
    expect(unchanged).toBeUndefined();

    const invalid = (await client
      .submitJob({ ...body, images: [] })
      .catch((err: unknown) => err)) as RecastApiError;
    expect(invalid).toBeInstanceOf(RecastApiError);
    expect(invalid.status).toBe(400);
    expect(invalid.code).toBe('VALIDATION_FAILED');
    expect(invalid.issues.map((i) => i.path)).toContain('images');
    const missing = (await client
      .getJob('job_01JAAAAAAAAAAAAAAAAAAAAAAA')
      .catch((err: unknown) => err)) as RecastApiError;
    expect(missing).toMatchObject({ status: 404, code: 'NOT_FOUND', retryable: false });
    const anonymous = createRecastClient({ baseUrl: s.apiUrl });
    await expect(anonymous.getJob(done.id)).rejects.toMatchObject({ status: 401 });

    const nowhere = createRecastClient({ baseUrl: `http://127.0.0.1:${await freePort()}` });
    const unreachable = await nowhere.getJob(done.id).catch((err: unknown) => err);
    expect(unreachable).toBeInstanceOf(RecastNetworkError);
    expect((unreachable as Error).message).toMatch(/cannot reach Recast .*ECONNREFUSED/);
  });

  it('uploads a manifest from a stream, quotes one, waits for the batch and pages through its jobs', async () => {
    const s = await start({ auth: true, ...fast });
    const client = clientOf(s);
    const rows = manifest(s, 5);

    const quote = await client.quoteManifest(rows, { format: 'jsonl', params: { max_cost_usd: 1 } });
    expect(quote).toMatchObject({ object: 'batch_quote', rows: 5, invalid_rows: 0 });

    // A Node stream, chunked mid-line: the body is streamed as it is read.
    const stream = Readable.from([rows.slice(0, 17), rows.slice(17, 400), rows.slice(400)]);
    const accepted = await client.submitManifest(stream, {
      format: 'jsonl',
      params: { name: 'from-a-stream' },
    });
    expect(accepted).toMatchObject({ object: 'batch', name: 'from-a-stream', rows: { total: 5 } });

    const finished = await client.waitForBatch(accepted.id, { intervalMs: 20 });
    expect(finished.status).toBe('completed');
    expect(finished.counts.completed).toBe(5);

    const jobs: Job[] = [];
    for await (const job of client.listBatchJobs(accepted.id, { limit: 2 })) jobs.push(job);
    expect(jobs.map((j) => j.custom_id)).toEqual(['row-0', 'row-1', 'row-2', 'row-3', 'row-4']);
    const listed: string[] = [];
    for await (const job of client.listJobs({ batch: accepted.id, limit: 1, order: 'asc' }))
      listed.push(job.id);
    expect(listed.sort()).toEqual(jobs.map((j) => j.id).sort());
    const batches: string[] = [];
    for await (const batch of client.listBatches({ limit: 1 })) batches.push(batch.id);
    expect(batches).toContain(accepted.id);

    const refused = (await client
      .submitManifest('{"video": 1}\n', { format: 'jsonl' })
      .catch((err: unknown) => err)) as RecastApiError;
    expect(refused).toBeInstanceOf(RecastApiError);
    expect(refused.issues[0]).toMatchObject({ line: 1 });
  });

  it('follows /v1/events and resumes after the last event it saw', async () => {
    const s = await start({ auth: true, ...fast });
    const client = clientOf(s);
    const follow = new AbortController();
    const all: RecastEvent[] = [];
    // From the stream's beginning ('0-0'): this system's tenant has no other events.
    const reading = (async () => {
      for await (const event of client.events({ lastEventId: '0-0', signal: follow.signal })) {
        all.push(event);
        if (event.type === 'batch.finished') follow.abort();
      }
    })();
    const accepted = await client.submitManifest(manifest(s, 2), { format: 'jsonl' });
    await reading;
    expect(all.map((e) => e.type)).toEqual(
      expect.arrayContaining(['batch.created', 'job.state', 'batch.finished']),
    );
    expect(all.find((e) => e.type === 'batch.finished')?.data.batch).toBe(accepted.id);
    expect(all.every((e) => e.id !== undefined)).toBe(true);

    // From the middle: exactly the events after that one, none again and none missed.
    const middle = Math.floor(all.length / 2);
    const resumed: RecastEvent[] = [];
    const again = new AbortController();
    for await (const event of client.events({ lastEventId: all[middle]!.id!, signal: again.signal })) {
      resumed.push(event);
      if (event.id === all.at(-1)!.id) again.abort();
    }
    expect(resumed.map((e) => e.id)).toEqual(all.slice(middle + 1).map((e) => e.id));

    // A connection that breaks after its third event: the client reconnects after the last id it
    // saw, and the reader gets the same events as over one connection, none twice.
    let cuts = 0;
    const flaky = createRecastClient({
      baseUrl: s.apiUrl,
      apiKey: ADMIN_KEY,
      fetch: async (request) => {
        const response = await fetch(request);
        if (!new URL(request.url).pathname.endsWith('/v1/events') || cuts++ > 0 || !response.body)
          return response;
        // Passes the stream's blocks on up to the third event, then breaks the body.
        let events = 0;
        let text = '';
        const encoder = new TextEncoder();
        const body = response.body.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              text += new TextDecoder().decode(chunk);
              let end = text.indexOf('\n\n');
              while (end !== -1) {
                const block = text.slice(0, end + 2);
                text = text.slice(end + 2);
                controller.enqueue(encoder.encode(block));
                if (block.startsWith('id: ') && ++events === 3) {
                  controller.error(new TypeError('terminated'));
                  return;
                }
                end = text.indexOf('\n\n');
              }
            },
          }),
        );
        return new Response(body, { status: response.status, headers: response.headers });
      },
    });
    const stop = new AbortController();
    const reconnects: (Error | undefined)[] = [];
    const over: RecastEvent[] = [];
    for await (const event of flaky.events({
      lastEventId: '0-0',
      signal: stop.signal,
      reconnectMs: 10,
      onReconnect: (err) => reconnects.push(err),
    })) {
      over.push(event);
      if (event.id === all.at(-1)!.id) stop.abort();
    }
    expect(reconnects.length).toBeGreaterThanOrEqual(1);
    expect(over.map((e) => e.id)).toEqual(all.map((e) => e.id));
  });

  it('uploads a file from disk and submits a job with its files as form parts', async () => {
    const s = await start({ auth: true, ...fast });
    const client = clientOf(s);
    const progress: number[] = [];
    const video = await openAsBlob(join(FIXTURES, 'clip-2s-faststart.mp4'));
    const uploaded = await client.uploadFile(video, {
      filename: 'clip.mp4',
      onProgress: (bytes) => progress.push(bytes),
    });
    expect(uploaded).toMatchObject({ object: 'file', kind: 'video', size: video.size, deduped: false });
    expect(progress.at(-1)).toBeGreaterThan(video.size);
    expect(await client.uploadFile(video)).toMatchObject({ uri: uploaded.uri, deduped: true });

    const image = await openAsBlob(join(FIXTURES, 'person-a.png'));
    const { job, created } = await client.submitJobWithFiles(
      { video: uploaded.uri, resolution: '720p' },
      { images: [image] },
      { idempotencyKey: 'form-1' },
    );
    expect(created).toBe(true);
    expect((await client.waitForJob(job.id, { intervalMs: 20 })).state).toBe('completed');
  });
});
