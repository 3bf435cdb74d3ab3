import { waitFor } from '@recast/core/testing';
import { describe, expect, it } from 'vitest';
import { ADMIN_KEY, type System, systemPerTest } from './system.js';

const { start } = systemPerTest();

interface SseEvent {
  id: string;
  event: string;
  data: Record<string, string>;
}

/**
 * Read a Server-Sent Events stream over fetch until `until` says stop (or `max` events), the way
 * a dashboard does (EventSource cannot send an Authorization header).
 */
async function readEvents(
  url: string,
  headers: Record<string, string>,
  until: (events: SseEvent[]) => boolean,
  timeoutMs = 60_000,
): Promise<SseEvent[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const res = await fetch(url, { headers, signal: abort.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  // A stream is an answer like any other: it carries the security headers too.
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
        const fields = Object.fromEntries(
          block
            .split('\n')
            .filter((l) => l && !l.startsWith(':'))
            .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
        );
        if (!fields.event) continue;
        events.push({ id: fields.id ?? '', event: fields.event, data: JSON.parse(fields.data ?? '{}') });
        if (until(events)) return events;
      }
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  throw new Error(`stream ended after ${events.length} events without the expected end`);
}

async function uploadBatch(s: System, key: string, rows: number) {
  const manifest = Array.from({ length: rows }, (_, i) =>
    JSON.stringify({
      custom_id: `r${i}`,
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
      duration_seconds: 2,
    }),
  ).join('\n');
  const res = await fetch(`${s.apiUrl}/v1/batches`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-ndjson' },
    body: manifest,
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function submitterKey(s: System, tenant: string): Promise<string> {
  const res = await fetch(`${s.apiUrl}/v1/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: `${tenant} dashboard`, role: 'submitter', tenant }),
  });
  return ((await res.json()) as { key: string }).key;
}

/** Per job: the states its events went through, checked for order and gaps (versions +1 each). */
function transitionsByJob(events: SseEvent[]) {
  const byJob = new Map<string, { to: string; from: string; version: number }[]>();
  for (const e of events) {
    if (e.event !== 'job.state') continue;
    const list = byJob.get(e.data.job!) ?? [];
    list.push({ from: e.data.from!, to: e.data.to!, version: Number(e.data.version) });
    byJob.set(e.data.job!, list);
  }
  return byJob;
}

describe('live events', () => {
  it('delivers every transition of a 100-job batch in order, and resumes from Last-Event-ID without gaps', async () => {
    const s = await start({
      auth: true,
      emulator: { stepMs: 20 },
      worker: { PROVIDER_SUBMITS_PER_WINDOW: '0', PROVIDER_MAX_IN_FLIGHT: '10' },
    });
    const key = await submitterKey(s, 'studio');
    const auth = { authorization: `Bearer ${key}` };
    const batch = await uploadBatch(s, key, 100);
    const url = `${s.apiUrl}/v1/events?batch=${batch}`;
    const finished = (events: SseEvent[]) => events.some((e) => e.event === 'batch.finished');

    // From the start of the stream (the batch was created before we connected), to the end.
    const all = await readEvents(url, { ...auth, 'last-event-id': '0-0' }, finished);
    expect(all[0]).toMatchObject({ event: 'batch.created', data: { batch, rows: '100' } });
    const byJob = transitionsByJob(all);
    expect(byJob.size).toBe(100);
    for (const [job, moves] of byJob) {
      // Every move is there, once, in order: versions 2, 3, 4, ... and each starts where the last ended.
      expect(
        moves.map((m) => m.version),
        job,
      ).toEqual(moves.map((_, i) => i + 2));
      expect(moves[0]!.from).toBe('queued');
      for (let i = 1; i < moves.length; i++) expect(moves[i]!.from).toBe(moves[i - 1]!.to);
      expect(moves.at(-1)!.to).toBe('completed');
      const record = await s.store.get(job);
      expect(record?.version).toBe(moves.length + 1);
    }
    const ids = all.map((e) => e.id);
    expect([...ids].sort()).toEqual(ids);

    // A reader that drops after 150 events and comes back with Last-Event-ID sees the rest, exactly.
    const first = await readEvents(
      url,
      { ...auth, 'last-event-id': '0-0' },
      (events) => events.length >= 150,
    );
    const rest = await readEvents(url, { ...auth, 'last-event-id': first.at(-1)!.id }, finished);
    expect([...first, ...rest].map((e) => e.id)).toEqual(ids);
    // The query parameter works the same way (for clients that cannot set headers).
    const viaQuery = await readEvents(`${url}&last_event_id=${first.at(-1)!.id}`, auth, finished);
    expect(viaQuery.map((e) => e.id)).toEqual(rest.map((e) => e.id));

    // Another tenant's key sees none of it.
    const other = await submitterKey(s, 'elsewhere');
    const res = await fetch(url, { headers: { authorization: `Bearer ${other}` } });
    expect(res.status).toBe(404);
  }, 120_000);

  it('tells a reader whose Last-Event-ID is older than the stream keeps to re-read (event: reset)', async () => {
    const s = await start({ auth: true, api: { EVENTS_RETENTION_MS: '60000' }, emulator: { stepMs: 5 } });
    const key = await submitterKey(s, 'studio');
    // An event from long ago, then the stream trimmed by age as new events are written.
    await s.redis.xadd(s.keys.events('studio'), '1000-0', 'type', 'job.state', 'job', 'old');
    await s.submit(
      { video: s.fixture('clip-2s-faststart.mp4'), images: [s.fixture('person-a.png')], duration_seconds: 2 },
      { authorization: `Bearer ${key}` },
    );
    await waitFor(async () => (await s.redis.xlen(s.keys.events('studio'))) > 0);
    const events = await readEvents(
      `${s.apiUrl}/v1/events`,
      { authorization: `Bearer ${key}`, 'last-event-id': '999-0' },
      (got) => got.some((e) => e.event === 'job.created'),
    );
    expect(events[0]?.event).toBe('reset');
    expect(await s.redis.xrange(s.keys.events('studio'), '1000-0', '1000-0')).toEqual([]);
  });
});

describe('ETags', () => {
  it('answers 304 to If-None-Match on every cacheable read, and a new tag once the data moved', async () => {
    // No worker yet: nothing moves while the tags are compared.
    const s = await start({ auth: true, noWorker: true, emulator: { stepMs: 5 } });
    const auth = s.authHeaders;
    const job = await s.submit({
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
      duration_seconds: 2,
    });
    const batch = await uploadBatch(s, ADMIN_KEY, 3);
    const paths = ['/v1/jobs', `/v1/jobs/${job.id}`, '/v1/batches', `/v1/batches/${batch}`, '/v1/stats'];
    const get = (path: string, etag?: string) =>
      fetch(`${s.apiUrl}${path}`, { headers: { ...auth, ...(etag ? { 'if-none-match': etag } : {}) } });

    const tags = new Map<string, string>();
    for (const path of paths) {
      const res = await get(path);
      expect(res.status, path).toBe(200);
      const etag = res.headers.get('etag');
      expect(etag, path).toMatch(/^"[^"]+"$/);
      tags.set(path, etag!);
      const again = await get(path, etag!);
      expect(again.status, path).toBe(304);
      expect(await again.text(), path).toBe('');
      expect(again.headers.get('etag'), path).toBe(etag);
    }
    // Once the jobs have run, every one of these reads has changed.
    await s.startWorker();
    await s.waitTerminal(job.id);
    await waitFor(async () => {
      const b = (await (await get(`/v1/batches/${batch}`)).json()) as { status: string };
      return b.status === 'completed';
    });
    for (const path of paths) {
      const res = await get(path, tags.get(path));
      expect(res.status, path).toBe(200);
      expect(res.headers.get('etag'), path).not.toBe(tags.get(path));
    }

    // Two writes within one millisecond (a note that does not move the state, then another) still
    // give the job two tags: a poller holding the first must get the second write's body.
    const done = (await s.store.get(job.id))!;
    const at = new Date(done.updated_at);
    const tagNow = async () => (await get(`/v1/jobs/${job.id}`)).headers.get('etag');
    const before = await tagNow();
    const when = { state: done.state, taskId: done.task_id! };
    expect(await s.store.annotate(job.id, when, { output_retention: 'pending' }, at)).toBe(true);
    const first = await tagNow();
    expect(await s.store.annotate(job.id, when, { output_retention: 'failed' }, at)).toBe(true);
    const second = await tagNow();
    expect(new Set([before, first, second]).size).toBe(3);
    expect((await get(`/v1/jobs/${job.id}`, first!)).status).toBe(200);
  }, 60_000);
});
