import { afterEach, describe, expect, it } from 'vitest';
import type { Faults } from './faults.js';
import { dataOf, type RunningEmulator, startEmulator, type TaskJson } from './test-support.js';

let emus: RunningEmulator[] = [];
afterEach(async () => {
  await Promise.all(emus.map((e) => e.close()));
  emus = [];
});

async function start(options: Parameters<typeof startEmulator>[0] = {}) {
  const e = await startEmulator(options);
  emus.push(e);
  return e;
}

describe('rate limits', () => {
  it('carries X-RateLimit-* on every response and answers 429 once the window is spent', async () => {
    const e = await start({ rateLimits: { get: { limit: 3, windowMs: 60_000 } } });
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await e.call('GET', '/tasks/unknown');
      expect(response.status).toBe(404);
      remaining.push(response.headers.get('x-ratelimit-remaining') ?? '');
      expect(Number(response.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
    }
    expect(remaining).toEqual(['2', '1', '0']);

    const limited = await e.call('GET', '/tasks/unknown/status');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(limited.body).toMatchObject({ type: expect.stringMatching(/rate_limited$/), status: 429 });
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);

    // Groups are separate windows: submitting still works.
    const run = await e.call('POST', '/apps/run', {
      app: 'pruna/p-video-replace',
      input: e.runInput(e.fixture('clip-2s-faststart.mp4')),
    });
    expect(run.status).toBe(200);
    expect(run.headers.get('x-ratelimit-limit')).toBe('100');
  });

  it('opens a new window once the old one ends', async () => {
    const e = await start({ rateLimits: { run: { limit: 1, windowMs: 100 } } });
    const body = { app: 'nobody/app', input: {} };
    expect((await e.call('POST', '/apps/run', body)).status).toBe(404);
    expect((await e.call('POST', '/apps/run', body)).status).toBe(429);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect((await e.call('POST', '/apps/run', body)).status).toBe(404);
  });

  it('sends no rate-limit headers when limits are off', async () => {
    const e = await start({ rateLimits: false });
    const response = await e.call('GET', '/tasks/unknown');
    expect(response.headers.get('x-ratelimit-remaining')).toBeNull();
  });

  it('can be changed at runtime through the admin endpoint', async () => {
    const e = await start();
    const put = await fetch(`${e.url}/_emulator/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rateLimits: { upload: { limit: 1, windowMs: 60_000 } } }),
    });
    const faults = (await put.json()) as Faults;
    expect(faults.rateLimits).toEqual({
      run: { limit: 100, windowMs: 60_000 },
      get: { limit: 1000, windowMs: 60_000 },
      upload: { limit: 1, windowMs: 60_000 },
    });
    const files = { files: [{ uri: '', filename: 'a.png', content_type: 'image/png' }] };
    expect((await e.call('POST', '/files', files)).status).toBe(200);
    expect((await e.call('POST', '/files', files)).status).toBe(429);
  });
});

describe('request faults', () => {
  it('answers 500 problem+json without doing anything under serverErrorRate 1', async () => {
    const e = await start({ faults: { serverErrorRate: 1 } });
    const response = await e.call('POST', '/apps/run', {
      app: 'pruna/p-video-replace',
      input: e.runInput(e.fixture('clip-2s-faststart.mp4')),
    });
    expect(response.status).toBe(500);
    expect(response.body).toMatchObject({ type: expect.stringMatching(/internal_error$/), status: 500 });
    expect(e.app.emulator.state()).toMatchObject({ submits: 0, tasks: { total: 0 } });
  });

  it('creates the task but answers 502 under lostRunAnswerRate 1 (an answer lost on the way back)', async () => {
    const e = await start({ faults: { lostRunAnswerRate: 1 } });
    const response = await e.call('POST', '/apps/run', {
      app: 'pruna/p-video-replace',
      input: e.runInput(e.fixture('clip-2s-faststart.mp4')),
    });
    expect(response.status).toBe(502);
    expect(e.app.emulator.state()).toMatchObject({ submits: 1, tasks: { total: 1 } });
  });

  it('answers 429 with Retry-After and X-RateLimit-* under rateLimitedRate 1', async () => {
    const e = await start({ faults: { rateLimitedRate: 1 } });
    const response = await e.call('POST', '/apps/run', {
      app: 'pruna/p-video-replace',
      input: e.runInput(e.fixture('clip-2s-faststart.mp4')),
    });
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(response.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(response.headers.get('x-ratelimit-reset')).toMatch(/^\d+$/);
    expect(e.app.emulator.state().submits).toBe(0);
  });

  it('adds latencyMs to provider responses', async () => {
    const e = await start({ faults: { latencyMs: { min: 60, max: 80 } } });
    const started = Date.now();
    await e.call('GET', '/tasks/unknown');
    // A lower bound only: the answer cannot come before the injected delay.
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
  });
});

describe('status views', () => {
  it('uses the pre-2026 numbers under legacy numbering', async () => {
    const e = await start({ faults: { statusNumbering: 'legacy' } });
    const task = await e.waitTerminal(await e.submit(e.fixture('clip-2s-faststart.mp4')));
    expect(task).toMatchObject({ status: 9, status_text: 'completed' });
    expect(task.events.map((event) => event.status)).toEqual([1, 2, 3, 4, 7, 8, 9]);

    const failed = await e.waitTerminal(await e.submit(e.fixture('not-a-video.mp4')));
    expect(failed.status).toBe(10);

    // No cancelling state: a cancel lands on cancelled (11) at once.
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'));
    const cancel = await e.call('POST', `/tasks/${id}/cancel`);
    expect(dataOf<TaskJson>(cancel.body)).toMatchObject({ status: 11, status_text: 'cancelled' });
    const status = await e.call('GET', `/tasks/${id}/status`);
    expect(dataOf<TaskJson>(status.body).status).toBe(11);
  });

  it('omits status_text when statusText is false', async () => {
    const e = await start({ faults: { statusText: false } });
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'));
    const task = dataOf<TaskJson>((await e.call('GET', `/tasks/${id}`)).body);
    expect(task).not.toHaveProperty('status_text');
    expect(task.status).toBe(1);
  });
});

describe('determinism', () => {
  async function fates(seed: number): Promise<string[]> {
    const e = await start({ seed, faults: { failureRate: 0.5 } });
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push(await e.submit(e.fixture('clip-2s-faststart.mp4')));
    const out: string[] = [];
    for (const id of ids) {
      const task = await e.waitTerminal(id);
      out.push(`${task.status_text}:${task.output?.seed ?? '-'}`);
    }
    return out;
  }

  it('gives the same fates and seeds under the same seed, and different ones under another', async () => {
    const first = await fates(42);
    const second = await fates(42);
    expect(second).toEqual(first);
    expect(first.some((fate) => fate.startsWith('failed'))).toBe(true);
    expect(first.some((fate) => fate.startsWith('completed'))).toBe(true);
    expect(await fates(7)).not.toEqual(first);
  });

  it('replays the same fates after a reset', async () => {
    const e = await start({ seed: 3, faults: { failureRate: 0.5 } });
    const run = async () => {
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) ids.push(await e.submit(e.fixture('clip-2s-faststart.mp4')));
      const out: string[] = [];
      for (const id of ids) out.push((await e.waitTerminal(id)).status_text ?? '');
      return out;
    };
    const before = await run();
    await fetch(`${e.url}/_emulator/reset`, { method: 'POST' });
    expect(await run()).toEqual(before);
  });
});

describe('admin faults and reset', () => {
  it('validates a faults patch and names the bad field', async () => {
    const e = await start();
    const response = await fetch(`${e.url}/_emulator/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ failureRate: 2 }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ detail: expect.stringMatching(/^failureRate: /) });
    const unknown = await fetch(`${e.url}/_emulator/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ chaos: true }),
    });
    expect(await unknown.json()).toMatchObject({ detail: expect.stringMatching(/chaos: unknown field/) });
  });

  it('resets tasks, bill, counters and faults to the construction defaults', async () => {
    const e = await start({ faults: { webhookShape: 'event' } });
    await e.waitTerminal(await e.submit(e.fixture('clip-2s-faststart.mp4')));
    e.app.emulator.setFaults({ envelope: 'v1', failureRate: 0.3 });
    const reset = await fetch(`${e.url}/_emulator/reset`, { method: 'POST' });
    expect(reset.status).toBe(200);
    const state = await (await fetch(`${e.url}/_emulator/state`)).json();
    expect(state).toEqual({
      bill: {
        total_micro_usd: 0,
        by_resolution: {
          '720p': { tasks: 0, seconds: 0, micro_usd: 0 },
          '1080p': { tasks: 0, seconds: 0, micro_usd: 0 },
        },
        tasks: [],
      },
      tasks: { total: 0, by_status: {} },
      submits: 0,
      in_flight: { current: 0, max: 0 },
      requests: [],
      webhooks: { sent: 0, dropped: 0, duplicated: 0, reordered: 0, failed: 0 },
      files: { records: 0, uploaded: 0, bytes: 0 },
    });
    const faults = await (await fetch(`${e.url}/_emulator/faults`)).json();
    expect(faults).toMatchObject({ envelope: 'v3', failureRate: 0, webhookShape: 'event' });
  });
});
