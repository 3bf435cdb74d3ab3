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

async function upload(s: System, body: string, query: string) {
  const res = await fetch(`${s.apiUrl}/v1/batches${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body,
  });
  return { status: res.status, body: (await res.json()) as Json };
}

const getJson = async (s: System, path: string) => (await (await fetch(`${s.apiUrl}${path}`)).json()) as Json;

async function finished(s: System, id: string, timeoutMs = 60_000): Promise<Json> {
  return waitFor(
    async () => {
      const b = await getJson(s, `/v1/batches/${id}`);
      return b.finished_at && b.cost.reserved_micro_usd === 0 ? b : undefined;
    },
    { timeoutMs, intervalMs: 200, what: `batch ${id} finished` },
  );
}

async function results(s: System, id: string): Promise<Json[]> {
  const text = await (await fetch(`${s.apiUrl}/v1/batches/${id}/results`)).text();
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Json);
}

describe('batch completion windows', () => {
  it('ends the rows not yet sent when the window closes expired, with no spend; the rest finish', async () => {
    // Two submits a second: 20 rows take ~10 s to send, the window closes after 3 s.
    const s = await start({
      emulator: { stepMs: 300 },
      worker: { PROVIDER_SUBMITS_PER_WINDOW: '2', PROVIDER_RATE_WINDOW_MS: '1000' },
    });
    const res = await upload(s, jsonl(rows(s, 20)), '?completion_window=3s');
    expect(res.status).toBe(202);
    expect(res.body.completion_window).toBe('3s');
    expect(Date.parse(res.body.expires_at) - Date.parse(res.body.created_at)).toBe(3000);
    const id = res.body.id as string;

    const done = await finished(s, id);
    expect(done.status).toBe('expired');
    expect(done.counts.completed + done.counts.expired).toBe(20);
    expect(done.counts.completed).toBeGreaterThan(0);
    expect(done.counts.expired).toBeGreaterThan(0);
    // Whatever reached the provider before the window closed ran to its end; nothing after it.
    const bill = (await s.emulatorState()).bill;
    expect(bill.tasks).toHaveLength(done.counts.completed);
    expect(done.cost.spent_micro_usd).toBe(bill.total_micro_usd);
    expect(done.cost.spent_micro_usd).toBe(done.counts.completed * 60_000);

    const out = await results(s, id);
    expect(out).toHaveLength(20);
    const expired = out.filter((r) => r.state === 'expired');
    expect(expired).toHaveLength(done.counts.expired);
    for (const r of expired) {
      expect(r).toMatchObject({ cost_micro_usd: null, output_video_url: null });
      expect(r.error).toMatch(/^BATCH_EXPIRED: /);
    }
    const job = await getJson(s, `/v1/jobs/${expired[0]!.job_id}`);
    expect(job).toMatchObject({ state: 'expired', error: { code: 'BATCH_EXPIRED' } });
    const listed = await getJson(s, `/v1/batches?status=expired`);
    expect(listed.data.map((b: Json) => b.id)).toEqual([id]);
  }, 90_000);

  it('expires rows parked on a budget when the window closes, and gives their money back', async () => {
    const s = await start({ emulator: { stepMs: 50 }, worker: { PROVIDER_SUBMITS_PER_WINDOW: '0' } });
    // Room for two rows of $0.06: the other four park, and nothing frees money for them.
    const res = await upload(s, jsonl(rows(s, 6)), '?completion_window=4s&max_cost_usd=0.12');
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    await waitFor(
      async () => {
        const b = await getJson(s, `/v1/batches/${id}`);
        return b.counts.completed === 2 && b.counts.waiting_budget === 4 ? b : undefined;
      },
      { timeoutMs: 20_000, what: 'two rows done, four parked' },
    );
    const done = await finished(s, id, 20_000);
    expect(done).toMatchObject({
      status: 'expired',
      counts: { completed: 2, expired: 4, waiting_budget: 0 },
      cost: { spent_micro_usd: 120_000, reserved_micro_usd: 0 },
    });
    expect(Date.parse(done.finished_at)).toBeGreaterThanOrEqual(Date.parse(done.expires_at));
    expect((await s.emulatorState()).bill.total_micro_usd).toBe(120_000);
    // The budget holds nothing for the expired rows.
    const usage = await s.budgets.usage(`batch:${id}`, 'lifetime');
    expect(usage).toMatchObject({ reserved_micro_usd: 0, spent_micro_usd: 120_000 });
  }, 60_000);

  it('leaves a batch whose rows were all sent in time completed', async () => {
    const s = await start({ emulator: { stepMs: 20 }, worker: { PROVIDER_SUBMITS_PER_WINDOW: '0' } });
    const res = await upload(s, jsonl(rows(s, 5)), '?completion_window=24h');
    expect(res.status).toBe(202);
    expect(Date.parse(res.body.expires_at) - Date.parse(res.body.created_at)).toBe(86_400_000);
    const done = await finished(s, res.body.id);
    expect(done).toMatchObject({ status: 'completed', counts: { completed: 5, expired: 0 } });
  });

  it.each([['abc'], ['0s'], ['31d'], ['1.5h'], ['24 hours']])(
    'refuses completion_window=%s with a 400 naming the field, and creates nothing',
    async (window) => {
      const s = await start({ noWorker: true });
      for (const dry of ['false', 'true']) {
        const res = await upload(
          s,
          jsonl(rows(s, 2)),
          `?completion_window=${encodeURIComponent(window)}&dry_run=${dry}`,
        );
        expect(res.status).toBe(400);
        expect(res.body.error.issues).toEqual([expect.objectContaining({ path: 'completion_window' })]);
      }
      expect(await s.redis.keys(`{${s.prefix}}:batch*`)).toEqual([]);
      expect(await s.redis.keys(s.keys.job('*'))).toEqual([]);
    },
  );
});
