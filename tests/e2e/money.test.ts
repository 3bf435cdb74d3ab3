import { waitFor } from '@recast/core/testing';
import { describe, expect, it } from 'vitest';
import { type System, systemPerTest } from './system.js';
import { startWorkerProcesses } from './worker-processes.js';

const { start, onCleanup } = systemPerTest();

async function api(
  s: System,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${s.apiUrl}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...s.authHeaders,
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { data?: unknown[] } };
}

/** Submit many jobs over HTTP, `concurrency` at a time. */
async function submitMany(
  s: System,
  count: number,
  body: Record<string, unknown>,
  headers = {},
  concurrency = 32,
) {
  const ids: string[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) ids[i] = (await s.submit(body, headers)).id;
    }),
  );
  return ids;
}

async function states(s: System, ids: string[]) {
  const counts: Record<string, number> = {};
  const pipeline = s.redis.pipeline();
  for (const id of ids) pipeline.hget(s.keys.job(id), 'state');
  for (const [, state] of (await pipeline.exec()) ?? [])
    counts[String(state)] = (counts[String(state)] ?? 0) + 1;
  return counts;
}

/** The jobs holding a reservation: their state, attempt and charge (for a failure's message). */
async function heldBy(s: System): Promise<string> {
  const held = await s.redis.hgetall(s.keys.reservations());
  const rows = await Promise.all(
    Object.entries(held).map(async ([id, entry]) => {
      const [state, attempt, task] = await s.redis.hmget(s.keys.job(id), 'state', 'attempt', 'task_id');
      const charged = await s.redis.hget(s.keys.ledgerCharged(), id);
      return { id, entry, state, attempt, task, charged };
    }),
  );
  return `reservations held: ${JSON.stringify(rows)}`;
}

describe('budgets under concurrency (8 worker processes, real Redis, emulator)', () => {
  it('never lets reserved + spent pass the limit; exactly the jobs that fit run; raising it releases the rest', async () => {
    const s = await start({
      noWorker: true,
      emulator: { stepMs: 5 },
      worker: { PROVIDER_SUBMITS_PER_WINDOW: '0', PROVIDER_MAX_IN_FLIGHT: '0', SETTLE_RECHECK_MS: '100' },
    });
    // 100 jobs of 2 s at 720p = 100 × $0.06 = $6.
    expect((await api(s, 'PUT', '/v1/budgets/global', { window: 'daily', limit_usd: 6 })).status).toBe(200);
    const body = {
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
      duration_seconds: 2,
    };
    const ids = await submitMany(s, 1000, body);

    const limit = 6_000_000;
    let samples = 0;
    let worst = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const usage = await s.budgets.usage('global', 'daily');
        worst = Math.max(worst, usage.reserved_micro_usd + usage.spent_micro_usd);
        samples++;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const workers = await startWorkerProcesses(8, s.workerEnv);
    onCleanup(() => workers.stop());

    await waitFor(
      async () => {
        const c = await states(s, ids);
        return c.completed === 100 && c.waiting_budget === 900 ? c : undefined;
      },
      { timeoutMs: 120_000, what: '100 completed and 900 parked' },
    );
    // Nothing more moves while the budget is full.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await states(s, ids)).toEqual({ completed: 100, waiting_budget: 900 });
    // Should money be left held, the message says by which jobs, in what state, charged or not.
    expect(await s.budgets.usage('global', 'daily'), await heldBy(s)).toEqual({
      reserved_micro_usd: 0,
      spent_micro_usd: limit,
    });
    expect(worst).toBeLessThanOrEqual(limit);
    expect(worst).toBe(limit);
    const parkedId = await waitFor(async () => {
      for (const id of ids.slice(-50)) if ((await s.store.get(id))?.state === 'waiting_budget') return id;
      return undefined;
    });
    expect(await s.getJob(parkedId)).toMatchObject({
      state: 'waiting_budget',
      estimate: { seconds: 2, source: 'hint', micro_usd: 60_000 },
      budget: { blocked_by: 'global|daily', reserved_micro_usd: null },
    });

    // Raise the limit: the parked jobs go by themselves.
    expect((await api(s, 'PUT', '/v1/budgets/global', { window: 'daily', limit_usd: 60 })).status).toBe(200);
    // However slow the machine, the released jobs must keep moving: the wait ends when all 1000
    // are completed, and fails (saying where they stand) only when nothing moves for a minute.
    let seen = '';
    let moved = Date.now();
    for (;;) {
      const now = await states(s, ids);
      if (now.completed === 1000) break;
      const print = JSON.stringify(now);
      if (print !== seen) {
        seen = print;
        moved = Date.now();
      }
      if (Date.now() - moved > 60_000)
        throw new Error(`released jobs stopped moving: ${print}; ${await heldBy(s)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    sampling = false;
    await sampler;
    expect(samples).toBeGreaterThan(100);
    expect(worst).toBeLessThanOrEqual(60_000_000);
    expect(await s.budgets.usage('global', 'daily'), await heldBy(s)).toEqual({
      reserved_micro_usd: 0,
      spent_micro_usd: 60_000_000,
    });
    const bill = (await s.emulatorState()).bill;
    expect(bill.tasks).toHaveLength(1000);
    expect(bill.total_micro_usd).toBe(60_000_000);
  }, 600_000);
});

describe('provider pressure', () => {
  it('keeps submits per window and tasks in flight within their limits, across workers', async () => {
    const s = await start({
      emulator: { stepMs: 60 },
      worker: {
        PROVIDER_SUBMITS_PER_WINDOW: '4',
        PROVIDER_RATE_WINDOW_MS: '500',
        PROVIDER_MAX_IN_FLIGHT: '3',
        DISPATCH_CONCURRENCY: '4',
      },
    });
    // A second worker process shares the limits through Redis.
    const workers = await startWorkerProcesses(1, {
      ...s.workerEnv,
      PROVIDER_SUBMITS_PER_WINDOW: '4',
      PROVIDER_RATE_WINDOW_MS: '500',
      PROVIDER_MAX_IN_FLIGHT: '3',
      DISPATCH_CONCURRENCY: '4',
    });
    onCleanup(() => workers.stop());
    const body = {
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
      duration_seconds: 2,
    };
    const ids = await submitMany(s, 24, body);
    await waitFor(async () => (await states(s, ids)).completed === 24, {
      timeoutMs: 90_000,
      what: '24 completed',
    });

    const state = await s.emulatorState();
    const submits = state.requests
      .filter((r) => r.method === 'POST' && r.route === '/apps/run')
      .map((r) => r.at)
      .sort((a, b) => a - b);
    expect(submits).toHaveLength(24);
    let maxInWindow = 0;
    for (let i = 0, j = 0; j < submits.length; j++) {
      while (submits[j]! - submits[i]! >= 500) i++;
      maxInWindow = Math.max(maxInWindow, j - i + 1);
    }
    expect(maxInWindow).toBeLessThanOrEqual(4);
    expect(state.in_flight.max).toBeLessThanOrEqual(3);
    expect(state.in_flight.max).toBe(3);
  }, 120_000);

  it('pauses every worker after a 429 without using up attempts', async () => {
    const s = await start({
      emulator: { stepMs: 10, rateLimits: { run: { limit: 2, windowMs: 1000 } } },
      worker: { PROVIDER_SUBMITS_PER_WINDOW: '0', DISPATCH_CONCURRENCY: '4' },
    });
    const body = {
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
      duration_seconds: 2,
    };
    const ids = await submitMany(s, 8, body);
    await waitFor(async () => (await states(s, ids)).completed === 8, {
      timeoutMs: 60_000,
      what: '8 completed',
    });
    const runs = (await s.emulatorState()).requests.filter((r) => r.route === '/apps/run');
    const refused = runs.filter((r) => r.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    // After a 429 the provider is left alone until its window resets; a worker that kept
    // hammering would collect a 429 per try.
    expect(refused.length).toBeLessThan(runs.length - refused.length + 4);
    for (const id of ids) expect((await s.store.get(id))?.attempt).toBe(1);
  }, 90_000);
});

describe('in-flight recovery', () => {
  it('recovers slots held by jobs that ended (or vanished) without releasing them', async () => {
    const s = await start({ worker: { IN_FLIGHT_SWEEP_MS: '200' } });
    const job = await s.submit({
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
      duration_seconds: 2,
    });
    expect((await s.waitTerminal(job.id)).state).toBe('completed');
    // As if a worker died between the terminal move and the release, and a job record was lost.
    const inFlight = s.keys.limitsInFlight();
    await s.redis.zadd(inFlight, Date.now() - 60_000, job.id, Date.now() - 60_000, 'job_gone');
    await waitFor(async () => (await s.redis.zcard(inFlight)) === 0, { what: 'slots recovered' });
  });
});

describe('fair share', () => {
  it('dispatches all of a newcomer tenant\u2019s 10 jobs within ~25 dispatches of a 2,000-job backlog', async () => {
    const s = await start({
      emulator: { stepMs: 5 },
      worker: { FAIR_SHARE_BUFFER: '2', DISPATCH_CONCURRENCY: '2', PROVIDER_SUBMITS_PER_WINDOW: '0' },
      api: { FAIR_SHARE_BUFFER: '2' },
    });
    const body = {
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
      duration_seconds: 2,
    };
    const aIds = await submitMany(s, 2000, body, { 'x-tenant': 'tenant-a' }, 64);
    const bIds = await submitMany(s, 10, body, { 'x-tenant': 'tenant-b' }, 1);
    const bTasks = await waitFor(
      async () => {
        const jobs = await Promise.all(bIds.map((id) => s.store.get(id)));
        return jobs.every((j) => j?.task_id) ? new Set(jobs.map((j) => j!.task_id!)) : undefined;
      },
      { timeoutMs: 120_000, what: 'B submitted' },
    );
    // The provider's own record of submission order (its task list, newest first).
    const bQueuedAt = (await s.store.get(bIds[0]!))!.created_at;
    const order = (await s.providerTasksOldestFirst()).map((t) => t.id);
    const lastB = Math.max(...[...bTasks].map((id) => order.indexOf(id)));
    // A newcomer waits behind what was already handed to BullMQ (the buffer, 2, and the jobs being
    // dispatched, 2), then alternates with A: its 10th job is about the 23rd dispatch.
    // Dispatches that happened before B queued its first job (counted from our records, which
    // note the submit after the provider answered, so this undercounts and the check is strict).
    const before = (await Promise.all(aIds.map((id) => s.store.get(id)))).filter(
      (j) => j?.submitted_at && j.submitted_at < bQueuedAt,
    ).length;
    const dispatchesUntilLastB = lastB + 1 - before;
    expect(dispatchesUntilLastB).toBeGreaterThanOrEqual(10);
    expect(dispatchesUntilLastB).toBeLessThanOrEqual(25);
  }, 180_000);
});

describe('costs report', () => {
  it('sums to the emulator\u2019s bill by resolution and by day', async () => {
    // An admin's report: across tenants.
    const s = await start({ auth: true });
    const images = [s.fixture('person-a.png')];
    const jobs = [
      await s.submit({ video: s.fixture('clip-2s-faststart.mp4'), images }),
      await s.submit(
        { video: s.fixture('clip-3s.mov'), images, resolution: '1080p' },
        { 'x-tenant': 'zeta' },
      ),
      await s.submit({ video: s.fixture('clip-5s-moov-at-end.mp4'), images, resolution: '1080p' }),
    ];
    for (const job of jobs)
      expect((await s.waitTerminal(job.id, 20_000, job.tenant)).state).toBe('completed');
    const bill = (await s.emulatorState()).bill;
    const byRes = await api(s, 'GET', '/v1/costs?group_by=resolution');
    expect(byRes.status).toBe(200);
    const rows = byRes.body.rows as {
      resolution: string;
      micro_usd: number;
      seconds: number;
      jobs: number;
    }[];
    for (const resolution of ['720p', '1080p'] as const) {
      const row = rows.find((r) => r.resolution === resolution);
      expect(row?.micro_usd).toBe(bill.by_resolution[resolution]?.micro_usd ?? 0);
    }
    expect(rows.find((r) => r.resolution === '1080p')).toMatchObject({
      seconds: 8,
      jobs: 2,
      micro_usd: 480_000,
    });
    const byDay = await api(s, 'GET', '/v1/costs?group_by=day,tenant');
    const total = (byDay.body.rows as { micro_usd: number }[]).reduce((sum, r) => sum + r.micro_usd, 0);
    expect(total).toBe(bill.total_micro_usd);
    expect((byDay.body.total as { usd: string }).usd).toBe('0.540000');
    expect(await api(s, 'GET', '/v1/costs?group_by=colour')).toMatchObject({
      status: 400,
      body: { error: { issues: [{ path: 'group_by.0' }] } },
    });
  }, 60_000);
});

describe('budget refusals and estimates', () => {
  it('fails a job at once with BUDGET_EXCEEDED when asked to, and parks it otherwise', async () => {
    // An admin sets limits and reads them across tenants.
    const s = await start({ auth: true });
    await api(s, 'PUT', '/v1/budgets/tenant:tight', { window: 'monthly', limit_usd: 0.05 });
    const body = { video: s.fixture('clip-2s-faststart.mp4'), images: [s.fixture('person-a.png')] };
    const rejected = await s.submit({ ...body, on_budget_exceeded: 'reject' }, { 'x-tenant': 'tight' });
    const parked = await s.submit(body, { 'x-tenant': 'tight' });
    expect(rejected.estimate).toMatchObject({ seconds: 2, source: 'probe', micro_usd: 60_000 });
    expect(await s.waitTerminal(rejected.id, 20_000, 'tight')).toMatchObject({
      state: 'failed',
      error: { code: 'BUDGET_EXCEEDED', message: expect.stringContaining('tenant:tight') },
      cost: null,
    });
    await waitFor(async () => (await s.getJob(parked.id, 'tight')).state === 'waiting_budget');
    const budgets = await api(s, 'GET', '/v1/budgets?scope=tenant:tight');
    expect(budgets.body.data).toEqual([
      expect.objectContaining({
        scope: 'tenant:tight',
        window: 'monthly',
        limit_usd: '0.050000',
        reserved_micro_usd: 0,
      }),
    ]);
    // Raising the limit lets the parked one go.
    await api(s, 'PUT', '/v1/budgets/tenant:tight', { window: 'monthly', limit_usd: 1 });
    expect(await s.waitTerminal(parked.id, 20_000, 'tight')).toMatchObject({
      state: 'completed',
      cost: { micro_usd: 60_000 },
    });
    expect((await s.emulatorState()).bill.tasks).toHaveLength(1);
  }, 60_000);
});

describe('estimates at submit', () => {
  it('takes the hint, else probes the MP4 header, else falls back; refuses private URLs and unreadable videos with a 400', async () => {
    // Port 9 on loopback: nothing listens, so the probe meets a connection error.
    const s = await start({ allowHosts: ['127.0.0.1:9'] });
    const images = [s.fixture('person-a.png')];
    const hinted = await s.submit({
      video: s.fixture('clip-5s-moov-at-end.mp4'),
      images,
      duration_seconds: 4,
    });
    expect(hinted.estimate).toMatchObject({ seconds: 4, source: 'hint', micro_usd: 120_000 });
    const probed = await s.submit({ video: s.fixture('clip-7.5s-audio.mp4'), images, resolution: '1080p' });
    expect(probed.estimate).toMatchObject({
      seconds: 7.52,
      source: 'probe',
      micro_usd: 451_200,
      probe_error: null,
    });
    // A network error says nothing about the video: it may pass, so the fallback is reserved.
    const unreachable = await s.submit({ video: 'http://127.0.0.1:9/clip.mp4', images });
    expect(unreachable.estimate).toMatchObject({
      seconds: 120,
      source: 'fallback',
      micro_usd: 3_600_000,
      probe_error: expect.stringContaining('ECONNREFUSED'),
    });

    const before = (await s.redis.keys(s.keys.job('*'))).length;
    for (const video of [
      `${s.apiUrl}/v1/jobs`,
      'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
      'http://10.1.2.3/clip.mp4',
      'http://[::1]:9/clip.mp4',
    ]) {
      const res = await api(s, 'POST', '/v1/jobs', { video, images });
      expect(res.status, video).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'URL_REFUSED', issues: [{ path: 'video' }] });
    }
    // A definite answer (404, not an MP4, a truncated header) refuses the job: no one can read it.
    for (const [file, reason] of [
      ['missing.mp4', /HTTP 404/],
      ['not-a-video.mp4', /not an MP4\/MOV file/],
      ['truncated.mp4', /no moov box/],
    ] as const) {
      const res = await api(s, 'POST', '/v1/jobs', { video: s.fixture(file), images });
      expect(res.status, file).toBe(400);
      expect(res.body.error).toMatchObject({
        code: 'VIDEO_UNREADABLE',
        issues: [{ path: 'video', message: expect.stringMatching(reason) }],
      });
    }
    expect((await s.redis.keys(s.keys.job('*'))).length).toBe(before);
  });
});
