import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type System, systemPerTest } from './system.js';
import { startWorkerProcesses } from './worker-processes.js';

const { start, onCleanup } = systemPerTest();

const FIXTURES = resolve(import.meta.dirname, '../../apps/emulator/fixtures');

/** The most requests of `route` (a prefix) that arrived at the provider within any `windowMs`. */
async function busiestWindow(s: System, routePrefix: string, windowMs: number): Promise<number> {
  const times = (await s.emulatorState()).requests
    .filter((r) => r.route.startsWith(routePrefix))
    .map((r) => r.at)
    .sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; j < times.length; j++) {
    while (times[j]! - times[i]! >= windowMs) i++;
    most = Math.max(most, j - i + 1);
  }
  return most;
}

describe('the task reads quota, across worker processes', () => {
  it('keeps settle reads and reconcile polls of two workers within PROVIDER_READS_PER_WINDOW, with no 429', async () => {
    const quota = {
      PROVIDER_READS_PER_WINDOW: '4',
      PROVIDER_RATE_WINDOW_MS: '1000',
      // Lost webhooks: every job is found by the reconciler's polls, then confirmed by a settle read.
      RECONCILE_INTERVAL_MS: '200',
      RECONCILE_AFTER_MS: '300',
      ORPHAN_AFTER_MS: '500',
    };
    // The provider allows exactly as many reads as Recast is told: one more would be a 429.
    const s = await start({
      worker: quota,
      emulator: {
        stepMs: 10,
        faults: { webhookDropRate: 1 },
        rateLimits: { run: false, get: { limit: 4, windowMs: 1000 }, upload: false },
      },
    });
    const workers = await startWorkerProcesses(1, { ...s.workerEnv, ...quota });
    onCleanup(() => workers.stop());
    const body = { video: s.fixture('clip-2s-faststart.mp4'), images: [s.fixture('person-a.png')] };
    const jobs = await Promise.all(Array.from({ length: 8 }, () => s.submit(body)));
    for (const job of jobs) expect((await s.waitTerminal(job.id, 90_000)).state).toBe('completed');

    const state = await s.emulatorState();
    const reads = state.requests.filter((r) => r.route.startsWith('/tasks'));
    // Each job needed at least a poll and a confirming read; none was refused.
    expect(reads.length).toBeGreaterThanOrEqual(16);
    expect(reads.filter((r) => r.status === 429)).toEqual([]);
    expect(await busiestWindow(s, '/tasks', 1000)).toBeLessThanOrEqual(4);
    expect(state.bill.total_micro_usd).toBe(8 * 60_000);
    expect((await s.costs(['resolution'])).total.micro_usd).toBe(state.bill.total_micro_usd);
  }, 150_000);
});

describe('the uploads quota, shared by API processes', () => {
  const png = readFileSync(join(FIXTURES, 'person-a.png'));
  /** A job with its reference image uploaded: distinct bytes each time, so no upload is reused. */
  const upload = (s: System, i: number) => {
    const data = new FormData();
    data.set('job', JSON.stringify({ video: s.fixture('clip-2s-faststart.mp4') }));
    const bytes = Buffer.concat([png, Buffer.from(`distinct-${i}-${Math.random()}`)]);
    data.append('images[]', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), `ref-${i}.png`);
    return fetch(`${s.apiUrl}/v1/jobs`, { method: 'POST', body: data, headers: s.authHeaders });
  };

  it('makes uploads wait their turn instead of meeting the provider’s 429', async () => {
    const quota = { PROVIDER_UPLOADS_PER_WINDOW: '2', PROVIDER_RATE_WINDOW_MS: '1000' };
    const s = await start({
      api: quota,
      emulator: { stepMs: 10, rateLimits: { run: false, get: false, upload: { limit: 2, windowMs: 1000 } } },
    });
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => upload(s, i)));
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(202));
    const files = (await s.emulatorState()).requests.filter((r) => r.route === '/files');
    expect(files).toHaveLength(6);
    expect(files.filter((r) => r.status === 429)).toEqual([]);
    expect(await busiestWindow(s, '/files', 1000)).toBeLessThanOrEqual(2);
  }, 60_000);

  it('answers 503 with Retry-After when the wait for a turn would pass PROVIDER_QUOTA_MAX_WAIT_MS, creating nothing', async () => {
    const s = await start({
      api: {
        PROVIDER_UPLOADS_PER_WINDOW: '1',
        PROVIDER_RATE_WINDOW_MS: '60000',
        PROVIDER_QUOTA_MAX_WAIT_MS: '200',
      },
    });
    expect((await upload(s, 0)).status).toBe(202);
    const refused = await upload(s, 1);
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(50);
    const body = (await refused.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('PROVIDER_RATE_LIMITED');
    expect(body.error.message).toContain('uploads quota');
    const list = (await (await fetch(`${s.apiUrl}/v1/jobs`, { headers: s.authHeaders })).json()) as {
      data: unknown[];
    };
    expect(list.data).toHaveLength(1);
    expect((await s.emulatorState()).requests.filter((r) => r.route === '/files')).toHaveLength(1);
  });
});

describe('submit pacing', () => {
  it('paces submits across the window, and a newcomer behind a backlog is sent within a few intervals', async () => {
    // 20 submits per 10 s: one every 500 ms, two back to back. Unpaced, the first 20 rows would
    // go at once and nothing more until the window slides, 10 s later.
    const s = await start({
      emulator: {
        stepMs: 20,
        rateLimits: { run: { limit: 20, windowMs: 10_000 }, get: false, upload: false },
      },
      worker: {
        PROVIDER_SUBMITS_PER_WINDOW: '20',
        PROVIDER_RATE_WINDOW_MS: '10000',
        PROVIDER_SUBMIT_BURST: '2',
        PROVIDER_MAX_IN_FLIGHT: '0',
      },
    });
    const row = (i: number) => ({
      custom_id: `big-${i}`,
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
      duration_seconds: 2,
    });
    const manifest = `${Array.from({ length: 30 }, (_, i) => JSON.stringify(row(i))).join('\n')}\n`;
    const big = await fetch(`${s.apiUrl}/v1/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', 'x-tenant': 'big' },
      body: manifest,
    });
    expect(big.status).toBe(202);
    await new Promise((r) => setTimeout(r, 1500));
    const small: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${s.apiUrl}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-tenant': 'small' },
        body: JSON.stringify({ ...row(i), custom_id: undefined }),
      });
      expect(res.status).toBe(202);
      small.push(((await res.json()) as { id: string }).id);
    }
    const asked = Date.now();
    const sentAt = async (id: string) => {
      for (let i = 0; i < 200; i++) {
        const t = (await (
          await fetch(`${s.apiUrl}/v1/jobs/${id}/timeline`, { headers: { 'x-tenant': 'small' } })
        ).json()) as {
          states: { state: string; at: string }[];
        };
        const sent = t.states.find((e) => e.state === 'submitting');
        if (sent) return Date.parse(sent.at);
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`job ${id} was never sent`);
    };
    const firstSmall = Math.min(...(await Promise.all(small.map(sentAt))));
    // Sent behind at most the feeder's buffer and the dispatches in progress, one interval each:
    // about 3 s, well before the window would have slid (8.5 s after the newcomer's submit).
    expect(firstSmall - asked).toBeLessThan(5000);
    // The provider saw a smooth rate: never more than the burst plus one per interval in any 2 s,
    // and never a 429.
    expect(await busiestWindow(s, '/apps/run', 2000)).toBeLessThanOrEqual(2 + 4);
    const runs = (await s.emulatorState()).requests.filter((r) => r.route.startsWith('/apps/run'));
    expect(runs.filter((r) => r.status === 429)).toEqual([]);
  }, 60_000);
});
