import { waitFor } from '@recast/core/testing';
import { describe, expect, it } from 'vitest';
import { type System, systemPerTest } from './system.js';

const { start } = systemPerTest();

// biome-ignore lint/suspicious/noExplicitAny: JSON answers are checked field by field below.
type Json = Record<string, any>;

function rows(s: System, n: number) {
  return Array.from({ length: n }, (_, i) => ({
    custom_id: `row-${i}`,
    video: s.fixture('clip-2s-faststart.mp4'),
    images: [s.fixture('person-a.png')],
    resolution: '720p',
    duration_seconds: 2,
  }));
}
const jsonl = (objs: object[]) => `${objs.map((o) => JSON.stringify(o)).join('\n')}\n`;

async function upload(s: System, body: string, query = '') {
  const res = await fetch(`${s.apiUrl}/v1/batches${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body,
  });
  return { status: res.status, body: (await res.json()) as Json };
}

const getJson = async (s: System, path: string) => (await (await fetch(`${s.apiUrl}${path}`)).json()) as Json;

describe('ETAs', () => {
  it('estimates a batch finish within 20% once a tenth of it is done (emulator at a known step time)', async () => {
    // 80 rows through 4 in-flight slots, each task six 200 ms steps at the emulator: the slots
    // bind, as they do at volume; the processing time is learnt from the first tasks.
    // The API estimates from the same limits as the workers (one deployment, one environment).
    const limits = { PROVIDER_MAX_IN_FLIGHT: '4', PROVIDER_SUBMITS_PER_WINDOW: '0' };
    const s = await start({ emulator: { stepMs: 200 }, worker: limits, api: limits });
    const manifest = jsonl(rows(s, 80));
    const quote = await upload(s, manifest, '?dry_run=true');
    expect(quote.status).toBe(200);
    // Nothing has completed yet: the documented default stands in, and says so.
    expect(quote.body.eta).toMatchObject({
      blocked_by: null,
      basis: { jobs_ahead: 80, output_seconds_ahead: 160, processing_source: 'default', max_in_flight: 4 },
    });
    expect(Date.parse(quote.body.eta.finish_at)).toBeGreaterThan(Date.now());

    const res = await upload(s, manifest);
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    const samples: Array<{ at: number; done: number; finishAt: number; source: string }> = [];
    const finished = await waitFor(
      async () => {
        const b = await getJson(s, `/v1/batches/${id}`);
        if (b.finished_at) return b;
        const done = b.counts.completed + b.counts.failed;
        if (b.eta?.finish_at)
          samples.push({
            at: Date.now(),
            done,
            finishAt: Date.parse(b.eta.finish_at),
            source: b.eta.basis.processing_source,
          });
        return undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250, what: `batch ${id} finished` },
    );
    expect(finished.status).toBe('completed');
    expect(finished.eta).toBeNull();
    const end = Date.parse(finished.finished_at);
    const errorOf = (x: (typeof samples)[number]) => Math.abs(x.finishAt - end) / (end - x.at);
    const tenth = samples.find((x) => x.done >= 8);
    if (!tenth) throw new Error('no estimate was read once a tenth was done');
    expect(tenth.source).toBe('observed');
    // Estimates are to the second, and each slot's turn-around adds a few ms the processing figure
    // does not hold: judged while 10 s or more are left (a second is 10% of it).
    const later = samples.filter((x) => x.done >= 8 && end - x.at >= 10_000);
    const worst = Math.max(...later.map(errorOf));
    // The figures, printed with the run's output.
    process.stdout.write(
      `ETA error: at ${tenth.done}/80 done ${(errorOf(tenth) * 100).toFixed(1)}% of the ${((end - tenth.at) / 1000).toFixed(1)} s left; worst from then on (with 10 s or more left) ${(worst * 100).toFixed(1)}% over ${later.length} reads; batch took ${((end - Date.parse(finished.created_at)) / 1000).toFixed(1)} s\n`,
    );
    expect(errorOf(tenth)).toBeLessThanOrEqual(0.2);
    expect(worst).toBeLessThanOrEqual(0.2);

    // Nothing left in line; every task is in the moving figure (read a few seconds late at most).
    const stats = await waitFor(
      async () => {
        const st = await getJson(s, '/v1/stats');
        return st.processing.some((f: Json) => f.kind === '720p|std' && f.tasks === 80) ? st : undefined;
      },
      { timeoutMs: 10_000, what: 'stats with all 80 tasks observed' },
    );
    expect(stats.eta).toMatchObject({ blocked_by: null, basis: { jobs_ahead: 0 } });
    expect(stats.processing).toContainEqual(
      expect.objectContaining({ kind: '720p|std', source: 'observed' }),
    );
  }, 150_000);

  it('says why a batch cannot move instead of an ETA: parked on its budget, or the provider paused', async () => {
    const limits = { PROVIDER_SUBMITS_PER_WINDOW: '0' };
    const s = await start({ emulator: { stepMs: 100 }, worker: limits, api: limits });
    // A max_cost of nothing: every row parks on the batch's own budget.
    const parked = await upload(s, jsonl(rows(s, 3)), '?max_cost_usd=0');
    expect(parked.status).toBe(202);
    const blocked = await waitFor(
      async () => {
        const b = await getJson(s, `/v1/batches/${parked.body.id}`);
        return b.counts.waiting_budget === 3 ? b : undefined;
      },
      { timeoutMs: 20_000, what: 'rows parked' },
    );
    expect(blocked.eta).toMatchObject({
      finish_at: null,
      blocked_by: { reason: 'budget', scope: `batch:${parked.body.id}`, window: 'lifetime', parked: 3 },
    });
    // The deployment's backlog says the same (its figures are a second old at most).
    const stats = await waitFor(
      async () => {
        const st = await getJson(s, '/v1/stats');
        return st.eta.blocked_by ? st : undefined;
      },
      { timeoutMs: 10_000, what: 'stats saying the backlog waits for money' },
    );
    expect(stats.eta).toMatchObject({ finish_at: null, blocked_by: { reason: 'budget', parked: 3 } });

    // Every submit answered 429 with a long Retry-After: the provider is paused for all workers.
    await s.setFaults({ rateLimitedRate: 1 });
    const paused = await upload(s, jsonl(rows(s, 2)));
    const view = await waitFor(
      async () => {
        const b = await getJson(s, `/v1/batches/${paused.body.id}`);
        return b.eta?.blocked_by?.reason === 'provider_paused' ? b : undefined;
      },
      { timeoutMs: 20_000, what: 'the batch shown paused by the provider' },
    );
    expect(view.eta.finish_at).toBeNull();
    expect(Date.parse(view.eta.blocked_by.until)).toBeGreaterThan(Date.now());
  }, 60_000);
});
