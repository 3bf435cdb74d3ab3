import { verifyWebhook } from '@recast/core/callbacks';
import { webhookUrl } from '@recast/core/provider';
import { startTestReceiver, waitFor } from '@recast/core/testing';
import { describe, expect, it } from 'vitest';
import { type System, systemPerTest } from './system.js';

const { start } = systemPerTest();

const FAST_RECONCILE = {
  RECONCILE_INTERVAL_MS: '200',
  RECONCILE_AFTER_MS: '500',
  ORPHAN_AFTER_MS: '500',
  WORKER_LOCK_MS: '2000',
  // A dead worker's POST may land until its timeout has passed: the orphan search waits that long.
  INFERENCE_TIMEOUT_MS: '1000',
  ORPHAN_GRACE_MS: '200',
};

const body = (s: System) => ({
  video: s.fixture('clip-2s-faststart.mp4'),
  images: [s.fixture('person-a.png')],
  duration_seconds: 2,
});

/** Tasks the provider holds for one job, from the webhook URL each was submitted with. */
async function providerTasksOf(s: System, jobId: string) {
  return (await s.providerTasksOldestFirst()).filter((t) =>
    (t as { webhook?: string }).webhook?.includes(`/webhooks/inference/${jobId}?`),
  );
}

/** Make a job look like a dispatch claimed attempt 1 and died before recording a task id. */
async function strandInSubmitting(s: System, jobId: string, tenant = 'default') {
  await s.redis.lrem(`${s.keys.fairPrefix()}line:${tenant}`, 0, jobId);
  const moved = await s.store.transition(jobId, 'submitting', {
    attempt: 1,
    dispatch_id: 'dispatch-that-died',
  });
  expect(moved.ok).toBe(true);
  // Overdue already (the harness's own store uses the default, production delays).
  expect(await s.redis.zadd(s.keys.reconcile(), 'XX', Date.now(), s.keys.job(jobId))).toBe(0);
  expect(await s.redis.zscore(s.keys.reconcile(), s.keys.job(jobId))).not.toBeNull();
}

describe('reconciliation', () => {
  it('recovers every job when the provider never sends a webhook', async () => {
    const s = await start({
      worker: FAST_RECONCILE,
      emulator: { stepMs: 10, faults: { webhookDropRate: 1 } },
    });
    const jobs = await Promise.all(Array.from({ length: 10 }, () => s.submit(body(s))));
    for (const job of jobs) expect((await s.waitTerminal(job.id)).state).toBe('completed');
    const state = await s.emulatorState();
    expect(state.webhooks.sent).toBe(0);
    expect(state.webhooks.dropped).toBeGreaterThanOrEqual(10);
    expect(state.bill.total_micro_usd).toBe(10 * 60_000);
    expect((await s.costs(['resolution'])).total.micro_usd).toBe(state.bill.total_micro_usd);
  });
});

describe('reconciliation thresholds', () => {
  it('takes a per-state threshold over the general one', async () => {
    // Ten minutes in general, but half a second for a submitted or running task: recovered fast.
    const worker = {
      ...FAST_RECONCILE,
      RECONCILE_AFTER_MS: '600000',
      RECONCILE_SUBMITTED_AFTER_MS: '500',
      RECONCILE_RUNNING_AFTER_MS: '500',
    };
    const s = await start({ worker, emulator: { stepMs: 10, faults: { webhookDropRate: 1 } } });
    const job = await s.submit(body(s));
    expect((await s.waitTerminal(job.id)).state).toBe('completed');
    expect((await s.emulatorState()).webhooks.sent).toBe(0);
  });
});

describe('crash-safe submission', () => {
  it('adopts the task a dead worker had submitted instead of submitting again', async () => {
    // No webhooks either: only the search of the provider's task list can find the orphan.
    const s = await start({
      noWorker: true,
      worker: FAST_RECONCILE,
      emulator: { stepMs: 10, faults: { webhookDropRate: 1 } },
    });
    const job = await s.submit(body(s));
    await strandInSubmitting(s, job.id);
    // The provider had accepted the dead worker's request.
    const orphan = await s.client.run({
      input: (await s.store.get(job.id))!.input,
      webhook: webhookUrl(s.apiUrl, s.secret, job.id, 1),
    });
    await s.startWorker();
    const done = await s.waitTerminal(job.id);
    expect(done).toMatchObject({ state: 'completed', attempt: 1, provider: { task_id: orphan.id } });
    expect(await providerTasksOf(s, job.id)).toHaveLength(1);
    expect((await s.emulatorState()).bill.tasks).toHaveLength(1);
  });

  it('submits again, as a new attempt, when the provider never got the dead worker\u2019s request', async () => {
    const s = await start({ noWorker: true, worker: FAST_RECONCILE, emulator: { stepMs: 10 } });
    const job = await s.submit(body(s));
    await strandInSubmitting(s, job.id);
    await s.startWorker();
    const done = await s.waitTerminal(job.id);
    expect(done).toMatchObject({ state: 'completed', attempt: 2 });
    const tasks = await providerTasksOf(s, job.id);
    expect(tasks).toHaveLength(1);
    expect((tasks[0] as { webhook?: string }).webhook).toContain('attempt=2');
  });
});

describe('a submit whose answer is lost', () => {
  it('finds the task the provider accepted instead of submitting (and paying) again', async () => {
    // Every POST /apps/run creates its task and then answers 502: only the task list can tell.
    // Reconciliation stays slow here, so it is the dispatch's own retry that finds the task.
    const s = await start({ emulator: { stepMs: 10, faults: { lostRunAnswerRate: 1 } } });
    const job = await s.submit(body(s));
    const done = await s.waitTerminal(job.id);
    expect(done).toMatchObject({ state: 'completed', attempt: 1 });
    expect(await providerTasksOf(s, job.id)).toHaveLength(1);
    const state = await s.emulatorState();
    expect(state.bill.tasks).toHaveLength(1);
    expect((await s.costs(['resolution'])).total.micro_usd).toBe(state.bill.total_micro_usd);
  });
});

describe('transient submit errors', () => {
  it('tries a dispatch DISPATCH_ATTEMPTS times when the provider cannot be reached, then fails the job', async () => {
    // Nothing listens on port 1: the request never leaves, so trying again is safe.
    const env = { INFERENCE_API_URL: 'http://127.0.0.1:1', DISPATCH_ATTEMPTS: '2' };
    const s = await start({ worker: env, api: env, emulator: { stepMs: 10 } });
    const job = await s.submit(body(s));
    const done = await s.waitTerminal(job.id, 30_000);
    expect(done).toMatchObject({ state: 'failed', error: { code: 'PROVIDER_UNAVAILABLE' } });
    // The job is failed a moment before its dispatch step is marked complete.
    const dispatch = await waitFor(async () => (await s.queues.dispatch.getCompleted(0, -1))[0]);
    expect(dispatch.attemptsMade).toBe(2);
    expect(await s.ledger.reservationOf(job.id)).toBeUndefined();
  });
});

describe('provider pressure while settling', () => {
  it('waits out 429s on GET /tasks without using up the settle steps’ attempts', async () => {
    // Two reads a second at the provider: most settles meet a 429 at least once.
    const s = await start({
      emulator: { stepMs: 10, rateLimits: { run: false, get: { limit: 2, windowMs: 1000 }, upload: false } },
    });
    const jobs = await Promise.all(Array.from({ length: 8 }, () => s.submit(body(s))));
    for (const job of jobs) expect((await s.waitTerminal(job.id, 60_000)).state).toBe('completed');
    const refused = (await s.emulatorState()).requests.filter(
      (r) => r.route.startsWith('/tasks') && r.status === 429,
    );
    expect(refused.length).toBeGreaterThan(0);
    const settles = (await s.queues.settle.getCompleted(0, -1)).filter((j) => j.name === 'job.settle');
    expect(settles.length).toBeGreaterThanOrEqual(jobs.length);
    // Each step ran to its end on its first attempt: the 429s put it back, they did not fail it.
    expect(settles.map((j) => j.attemptsMade).filter((n) => n > 1)).toEqual([]);
    expect((await s.costs(['resolution'])).total.micro_usd).toBe(
      (await s.emulatorState()).bill.total_micro_usd,
    );
  }, 90_000);
});

describe('stale updates across attempts', () => {
  it('ignores a late webhook of a failed, retried attempt while the next attempt runs', async () => {
    const s = await start({ noWorker: true, emulator: { stepMs: 10, faults: { failureRate: 1 } } });
    const job = await s.submit({ ...body(s), max_provider_retries: 1 });
    // Attempt 1 ran and failed at the provider (its webhook is on the settle queue), and the
    // worker that retried it left the job queued for attempt 2 with no task recorded.
    const first = await s.client.run({
      input: (await s.store.get(job.id))!.input,
      webhook: webhookUrl(s.apiUrl, s.secret, job.id, 1),
    });
    await waitFor(async () => (await s.client.getStatus(first.id)).status === 'failed');
    await waitFor(async () => (await s.queues.settle.getWaitingCount()) > 0);
    await s.redis.hset(s.keys.job(job.id), {
      attempt: '1',
      provider_failures: '1',
      failed_task_id: first.id,
    });
    // The same task's webhook once more, late, with another status (so it is not deduped away).
    const late = await fetch(`${webhookUrl(s.apiUrl, s.secret, job.id, 1)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: first.id, status: 4 }),
    });
    expect(late.status).toBe(202);
    await s.setFaults({ failureRate: 0 });
    await s.startWorker();
    const done = await s.waitTerminal(job.id);
    expect(done).toMatchObject({ state: 'completed', attempt: 2 });
    const tasks = await providerTasksOf(s, job.id);
    expect(tasks).toHaveLength(2);
    expect(done.provider?.task_id).not.toBe(first.id);
    await s.drained();
    expect(await s.ledger.reservationOf(job.id)).toBeUndefined();
    expect((await s.costs(['resolution'])).total.micro_usd).toBe(
      (await s.emulatorState()).bill.total_micro_usd,
    );
  });
});

async function post(s: System, path: string, tenant = 'default') {
  const res = await fetch(`${s.apiUrl}${path}`, { method: 'POST', headers: { 'x-tenant': tenant } });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } },
  };
}

describe('cancellation', () => {
  it('cancels a parked job at once and releases its money; nothing reaches the provider', async () => {
    const s = await start({ worker: FAST_RECONCILE });
    await s.budgets.setLimit('tenant:cheap', 'daily', 1);
    const job = await s.submit(body(s), { 'x-tenant': 'cheap' });
    await waitFor(async () => (await s.store.get(job.id))?.state === 'waiting_budget');
    const res = await post(s, `/v1/jobs/${job.id}/cancel`, 'cheap');
    expect(res).toMatchObject({ status: 200, body: { state: 'cancelled', cost: null } });
    expect(await post(s, `/v1/jobs/${job.id}/cancel`, 'cheap')).toMatchObject({
      status: 409,
      body: { error: { code: 'JOB_FINISHED', message: expect.stringContaining('cancelled') } },
    });
    expect(await s.budgets.usage('tenant:cheap', 'daily')).toEqual({
      reserved_micro_usd: 0,
      spent_micro_usd: 0,
    });
    expect((await s.emulatorState()).submits).toBe(0);
  });

  it('cancels a running job at the provider; the terminal update settles it; repeats are idempotent', async () => {
    const s = await start({ worker: FAST_RECONCILE, emulator: { stepMs: 400 } });
    const job = await s.submit(body(s));
    await waitFor(async () => ['submitted', 'running'].includes((await s.store.get(job.id))?.state ?? ''));
    const first = await post(s, `/v1/jobs/${job.id}/cancel`);
    expect(first).toMatchObject({ status: 202, body: { state: 'cancelling' } });
    const again = await post(s, `/v1/jobs/${job.id}/cancel`);
    expect([200, 202]).toContain(again.status);
    const done = await s.waitTerminal(job.id);
    expect(done).toMatchObject({ state: 'cancelled', cost: null });
    const bill = (await s.emulatorState()).bill;
    expect(bill.total_micro_usd).toBe(0);
    expect(await s.ledger.chargeOf(job.id)).toBeUndefined();
    expect(await s.budgets.usage('global', 'daily')).toEqual({ reserved_micro_usd: 0, spent_micro_usd: 0 });
    expect(await s.redis.zcard(s.keys.limitsInFlight())).toBe(0);
  });

  it('answers 404 for a job of another tenant or none, and 409 for a finished one', async () => {
    const s = await start({ emulator: { stepMs: 5 } });
    const job = await s.submit(body(s));
    expect((await post(s, `/v1/jobs/${job.id}/cancel`, 'someone-else')).status).toBe(404);
    expect((await post(s, '/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel')).status).toBe(404);
    await s.waitTerminal(job.id);
    expect(await post(s, `/v1/jobs/${job.id}/cancel`)).toMatchObject({
      status: 409,
      body: { error: { code: 'JOB_FINISHED', message: expect.stringContaining('completed') } },
    });
  });
});

describe('provider-side failures', () => {
  it('retries a failed task as a new attempt up to max_provider_retries, each attempt accounted', async () => {
    const s = await start({ worker: FAST_RECONCILE, emulator: { stepMs: 10, faults: { failureRate: 1 } } });
    const once = await s.submit({ ...body(s), max_provider_retries: 2 });
    const done = await s.waitTerminal(once.id);
    expect(done).toMatchObject({ state: 'failed', attempt: 3, error: { code: 'PROVIDER_TASK_FAILED' } });
    expect(await providerTasksOf(s, once.id)).toHaveLength(3);
    const plain = await s.submit(body(s));
    expect(await s.waitTerminal(plain.id)).toMatchObject({ state: 'failed', attempt: 1 });
    expect(await providerTasksOf(s, plain.id)).toHaveLength(1);
    // Nothing billed, nothing held.
    expect(await s.budgets.usage('global', 'daily')).toEqual({ reserved_micro_usd: 0, spent_micro_usd: 0 });
  });

  it('completes on a later attempt when the provider recovers', async () => {
    const s = await start({ worker: FAST_RECONCILE, emulator: { stepMs: 10, faults: { failureRate: 1 } } });
    const job = await s.submit({ ...body(s), max_provider_retries: 3 });
    await waitFor(async () => ((await s.store.get(job.id))?.provider_failures ?? 0) >= 1);
    await s.setFaults({ failureRate: 0 });
    const done = await s.waitTerminal(job.id);
    expect(done.state).toBe('completed');
    expect(done.attempt).toBeGreaterThanOrEqual(2);
    expect(done.cost?.micro_usd).toBe(60_000);
    expect((await s.costs(['resolution'])).total.micro_usd).toBe(
      (await s.emulatorState()).bill.total_micro_usd,
    );
  });
});

describe('callbacks to clients', () => {
  const secrets = ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'a-second-secret-being-rotated-in'];

  it('POSTs a signed job.completed / job.cancelled to the callback_url, verifiable with any secret', async () => {
    const receiver = await startTestReceiver();
    try {
      const env = { CALLBACK_SECRETS: secrets.join(','), SSRF_ALLOW_HOSTS: receiver.host };
      // The API allows the receiver besides the emulator, whose fixtures every job names.
      const s = await start({
        worker: { ...FAST_RECONCILE, ...env },
        api: { CALLBACK_SECRETS: env.CALLBACK_SECRETS },
        allowHosts: [receiver.host],
        emulator: { stepMs: 10 },
      });
      const done = await s.submit({ ...body(s), callback_url: receiver.url('/hooks/done') });
      await s.waitTerminal(done.id);
      const [delivery] = await waitFor(() => {
        const got = receiver.received('/hooks/done');
        return got.length > 0 ? got : undefined;
      });
      for (const secret of secrets) {
        const verified = verifyWebhook({
          headers: delivery!.headers as never,
          body: delivery!.body,
          secrets: [secret],
        });
        expect(verified.ok).toBe(true);
      }
      expect(
        verifyWebhook({ headers: delivery!.headers as never, body: `${delivery!.body} `, secrets }).ok,
      ).toBe(false);
      expect(JSON.parse(delivery!.body)).toMatchObject({
        type: 'job.completed',
        data: { id: done.id, state: 'completed', cost: { micro_usd: 60_000 } },
      });

      // A parked job cancelled through the API: the callback comes from the API's side.
      await s.budgets.setLimit('tenant:poor', 'daily', 1);
      const parked = await s.submit(
        { ...body(s), callback_url: receiver.url('/hooks/cancelled') },
        { 'x-tenant': 'poor' },
      );
      await waitFor(async () => (await s.store.get(parked.id))?.state === 'waiting_budget');
      expect((await post(s, `/v1/jobs/${parked.id}/cancel`, 'poor')).status).toBe(200);
      const [cancelled] = await waitFor(() => {
        const got = receiver.received('/hooks/cancelled');
        return got.length > 0 ? got : undefined;
      });
      expect(JSON.parse(cancelled!.body)).toMatchObject({ type: 'job.cancelled', data: { id: parked.id } });
      expect(receiver.received('/hooks/done')).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });

  it('refuses a callback_url at submit when callbacks are off, or when it points somewhere private', async () => {
    const off = await start();
    const refused = await fetch(`${off.apiUrl}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body(off), callback_url: 'https://hooks.example.com/x' }),
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { issues: { path: string }[] } }).error.issues[0]?.path).toBe(
      'callback_url',
    );

    const on = await start({ api: { CALLBACK_SECRETS: secrets[0]! } });
    const res = await fetch(`${on.apiUrl}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body(on), callback_url: 'http://169.254.169.254/latest/meta-data' }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      error: { code: 'URL_REFUSED', issues: [{ path: 'callback_url' }] },
    });
  });
});
