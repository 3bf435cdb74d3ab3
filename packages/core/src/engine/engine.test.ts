import { afterEach, describe, expect, it } from 'vitest';
import { loadCoreConfig } from '../config/common.js';
import type { JobRecord } from '../model/record.js';
import { createInferenceClient, type InferenceClient } from '../provider/inference-client.js';
import { RateLimitBackoff } from '../provider/rate-limit.js';
import { webhookUrl } from '../provider/webhook-token.js';
import { type CannedHandler, type CannedServer, startCannedServer } from '../testing/canned-server.js';
import { queuedJobRecord, testLogger, testRedisUrl, uniquePrefix } from '../testing/index.js';
import { Engine } from './engine.js';
import { createServices, type Services } from './services.js';

const SECRET = 'engine-test-secret-0123456789';
const PUBLIC_URL = 'http://recast.test';

let provider: CannedServer | undefined;
let services: Services | undefined;
let client: InferenceClient | undefined;

afterEach(async () => {
  await client?.close();
  await provider?.close();
  await services?.close();
  provider = client = services = undefined;
});

/** An engine on the run's real Redis, with a provider that answers over real HTTP. */
async function engineWith(handler: CannedHandler) {
  provider = await startCannedServer(handler);
  const config = loadCoreConfig({
    REDIS_URL: testRedisUrl(),
    REDIS_PREFIX: uniquePrefix('engine'),
    WEBHOOK_SECRET: SECRET,
    PROVIDER_SUBMITS_PER_WINDOW: '0',
    PROVIDER_MAX_IN_FLIGHT: '0',
    INFERENCE_TIMEOUT_MS: '1000',
  });
  services = await createServices({ config, logger: testLogger(), role: 'producer', name: 'engine-test' });
  client = createInferenceClient({ baseUrl: provider.url, apiKey: 'inf_test', logger: testLogger() });
  const engine = new Engine(services, {
    callbacks: false,
    provider: {
      client,
      publicUrl: PUBLIC_URL,
      dispatchBackoff: new RateLimitBackoff(100),
      settleBackoff: new RateLimitBackoff(100),
      inFlightPollMs: 100,
      recheckMs: 100,
      maxRechecks: 3,
      orphans: { graceMs: 0, timeoutMs: 5_000, watchMs: 10_000, pageSize: 100 },
      reconcile: { maxPerPass: 10, againAfterMs: 1_000, floorMs: 100 },
    },
  });
  return { engine, services, provider };
}

const emptyList = { items: [], next_cursor: '', has_next: false };

function task(id: string, jobId: string, attempt: number, status: string, seconds?: number) {
  return {
    id,
    status: status === 'completed' ? 10 : status === 'running' ? 7 : 11,
    status_text: status,
    created_at: new Date().toISOString(),
    updated_at: new Date().toISOString(),
    input: {},
    output:
      seconds === undefined
        ? null
        : { video: 'https://cdn/out.mp4', output_meta: { outputs: [{ seconds }] } },
    logs: [],
    events: [],
    webhook: webhookUrl(PUBLIC_URL, SECRET, jobId, attempt),
  };
}

/** A job whose dispatch `d1` claimed attempt 1 long ago and lost the answer of its POST. */
async function strandedJob(s: Services): Promise<JobRecord> {
  const record = queuedJobRecord();
  await s.store.create(record);
  const long = new Date(Date.now() - 60_000).toISOString();
  const moved = await s.store.transition(record.id, 'submitting', {
    attempt: 1,
    dispatch_id: 'd1',
    claimed_at: long,
    submit_ended_at: long,
  });
  expect(moved.ok).toBe(true);
  return (await s.store.get(record.id)) as JobRecord;
}

describe('the submit claim', () => {
  it('is revoked by a settle that attaches a task: a resumed dispatch then sends nothing', async () => {
    let jobId = '';
    const {
      engine,
      services: s,
      provider: p,
    } = await engineWith((request) => {
      if (request.url === '/tasks/list') {
        // While the dispatch searches, the attempt's webhook arrives and settle attaches task A.
        void s.store.transition(
          jobId,
          'running',
          { task_id: 'task_A', submit_claim: null },
          { task: 'task_A' },
        );
        return { body: { data: emptyList }, delayMs: 300 };
      }
      return { status: 500, body: { detail: 'unexpected' } };
    });
    jobId = (await strandedJob(s)).id;
    const outcome = await engine.dispatch({ jobId, dispatchId: 'd1', lastTry: false });
    expect(outcome).toEqual({ kind: 'done', result: { skipped: 'claim revoked' } });
    expect(p.requests.map((r) => r.url)).toEqual(['/tasks/list']);
    expect((await s.store.get(jobId))?.task_id).toBe('task_A');
  });

  it('moves the job to its next attempt, claimed, when the search finds none: one POST per attempt, the one left watched', async () => {
    let jobId = '';
    const {
      engine,
      services: s,
      provider: p,
    } = await engineWith((request) => {
      if (request.url === '/tasks/list') return { body: { data: emptyList } };
      if (request.url === '/apps/run') return { body: { data: task('task_B', jobId, 2, 'running') } };
      return { status: 500 };
    });
    jobId = (await strandedJob(s)).id;
    const outcome = await engine.dispatch({ jobId, dispatchId: 'd1', lastTry: false });
    expect(outcome).toEqual({ kind: 'done', result: { taskId: 'task_B' } });
    expect(p.requests.map((r) => r.url)).toEqual(['/tasks/list', '/apps/run']);
    const listed = p.requests[0]?.json as { filters: unknown[] };
    expect(listed.filters).toEqual([
      { field: 'webhook', operator: 'eq', value: webhookUrl(PUBLIC_URL, SECRET, jobId, 1) },
    ]);
    const run = p.requests[1]?.json as { webhook: string };
    expect(run.webhook).toBe(webhookUrl(PUBLIC_URL, SECRET, jobId, 2));
    expect(await s.store.get(jobId)).toMatchObject({ state: 'submitted', task_id: 'task_B', attempt: 2 });
    // Attempt 1's POST may still land (a gateway forwarding late): it is watched for a while.
    const watches = (await s.queues.settle.getDelayed()).filter((j) => j.name === 'job.watch');
    expect(watches.map((j) => j.data)).toEqual([expect.objectContaining({ jobId, attempt: 1 })]);
  });

  it('is only held by the dispatch that claimed the attempt', async () => {
    const { services: s } = await engineWith(() => ({ status: 500 }));
    const job = await strandedJob(s);
    expect(await s.store.claimSubmit(job.id, 'claim', 1, 'another-dispatch')).toBe(false);
    expect(await s.store.claimSubmit(job.id, 'claim', 2, 'd1')).toBe(false);
    expect(await s.store.claimSubmit(job.id, 'claim', 1, 'd1')).toBe(true);
    await s.store.transition(
      job.id,
      'running',
      { task_id: 'task_A', submit_claim: null },
      { task: 'task_A' },
    );
    expect(await s.store.claimSubmit(job.id, 'claim', 1, 'd1')).toBe(false);
  });

  it('never lets a second task replace the one attached', async () => {
    const { services: s } = await engineWith(() => ({ status: 500 }));
    const job = await strandedJob(s);
    expect((await s.store.transition(job.id, 'running', { task_id: 'A' }, { task: 'A' })).ok).toBe(true);
    expect((await s.store.transition(job.id, 'completed', { task_id: 'B' }, { task: 'B' })).ok).toBe(false);
    expect(await s.store.get(job.id)).toMatchObject({ state: 'running', task_id: 'A' });
  });
});

describe('a failover that lost writes', () => {
  it('redoes a submit claim the new primary never had: the task sent is recorded, nothing is sent twice', async () => {
    let jobId = '';
    let before: Record<string, string> = {};
    const {
      engine,
      services: s,
      provider: p,
    } = await engineWith((request) => {
      if (request.url === '/apps/run') {
        // The claim was written on a primary that died before its replica had it: the promoted
        // replica holds the job as it was before the claim (queued, attempt 0), no reservation.
        void s.redis
          .multi()
          .del(s.keys.job(jobId))
          .hset(s.keys.job(jobId), before)
          .hdel(s.keys.reservations(), jobId)
          .exec();
        return { body: { data: task('task_A', jobId, 1, 'running') }, delayMs: 300 };
      }
      return { status: 500, body: { detail: 'unexpected' } };
    });
    const record = queuedJobRecord();
    await s.store.create(record);
    jobId = record.id;
    before = await s.redis.hgetall(s.keys.job(jobId));
    const outcome = await engine.dispatch({ jobId, dispatchId: 'd1', lastTry: false });
    expect(outcome).toEqual({ kind: 'done', result: { taskId: 'task_A' } });
    expect(await s.store.get(jobId)).toMatchObject({ state: 'submitted', task_id: 'task_A', attempt: 1 });
    expect(p.requests.map((r) => r.url)).toEqual(['/apps/run']);
    // The reservation the failover lost is held again, so the settle releases what it charges.
    expect(await s.ledger.reservationOf(jobId)).toBe(record.estimate_micro_usd ?? 0);
  });
});

describe('a failover that lost a job', () => {
  it('releases a reservation made for a job whose record the new primary never had', async () => {
    const { engine, services: s } = await engineWith(() => ({ status: 500 }));
    const kept = queuedJobRecord();
    await s.store.create(kept);
    expect((await s.ledger.reserve({ jobId: kept.id, tenant: kept.tenant }, 1_000)).ok).toBe(true);
    expect((await s.ledger.reserve({ jobId: 'job_LOST', tenant: 'acme' }, 5_000)).ok).toBe(true);
    await engine.sweepMoney(0);
    expect(await s.ledger.reservationOf('job_LOST')).toBeUndefined();
    // A live job's reservation is its own until it settles.
    expect(await s.ledger.reservationOf(kept.id)).toBe(1_000);
  });

  it('releases a reservation made again after the job was charged (a claim redone late)', async () => {
    const { engine, services: s } = await engineWith(() => ({ status: 500 }));
    const finishedAt = new Date(Date.now() - 5_000).toISOString();
    const record = queuedJobRecord({ estimate_micro_usd: 3_000 });
    await s.store.create(record);
    const owner = { jobId: record.id, tenant: record.tenant };
    expect((await s.ledger.reserve(owner, 3_000)).ok).toBe(true);
    const charge = {
      ...owner,
      taskId: 'task_A',
      attempt: 1,
      kind: 'run' as const,
      day: finishedAt.slice(0, 10),
      resolution: '720p' as const,
      ms: 4_000,
      microUsd: 120_000,
      priceVersion: s.prices.version,
    };
    expect(await s.ledger.charge(charge)).toBe(true);
    for (const to of ['submitting', 'completed'] as const)
      expect(
        (
          await s.store.transition(record.id, to, {
            attempt: 1,
            task_id: 'task_A',
            ...(to === 'completed'
              ? { billed_ms: 4_000, cost_micro_usd: 120_000, finished_at: finishedAt }
              : {}),
          })
        ).ok,
      ).toBe(true);
    // A dispatch that read the job before the failover redoes its claim's reservation now.
    expect((await s.ledger.reserve(owner, 3_000)).ok).toBe(true);
    await s.redis.del(s.keys.unparkWake());
    expect(await engine.sweepMoney(1_000)).toBe(1);
    expect(await s.ledger.reservationOf(record.id)).toBeUndefined();
    // The freed money may let a parked job go: the parking lot is woken.
    expect(await s.redis.exists(s.keys.unparkWake())).toBe(1);
    // Charged once: the sweep released the money and charged nothing more.
    expect(await s.ledger.chargesOf(record.id, [record.id])).toHaveLength(1);
    expect(await engine.sweepMoney(1_000)).toBe(0);
  });
});

describe('a second task for one job', () => {
  it('that the dispatch itself created after a task was attached is cancelled and followed', async () => {
    let jobId = '';
    const {
      engine,
      services: s,
      provider: p,
    } = await engineWith((request) => {
      if (request.url === '/tasks/list') return { body: { data: emptyList } };
      if (request.url === '/apps/run') {
        // The answer comes back after settle attached the attempt's first task.
        void s.store.transition(
          jobId,
          'running',
          { task_id: 'task_A', submit_claim: null },
          { task: 'task_A' },
        );
        return { body: { data: task('task_B', jobId, 1, 'running') }, delayMs: 300 };
      }
      return { status: 200, body: { data: {} } };
    });
    jobId = (await strandedJob(s)).id;
    await engine.dispatch({ jobId, dispatchId: 'd1', lastTry: false });
    expect(p.requests.map((r) => `${r.method} ${r.url}`)).toContain('POST /tasks/task_B/cancel');
    expect((await s.store.get(jobId))?.task_id).toBe('task_A');
    const follow = (await s.queues.settle.getDelayed()).filter((j) => j.name === 'job.settle');
    expect(follow.map((j) => j.data)).toEqual([
      expect.objectContaining({ jobId, taskId: 'task_B', statusHint: 'duplicate' }),
    ]);
  });

  it('is charged once as a duplicate line when billed; the job and the costs report show it', async () => {
    let jobId = '';
    const { engine, services: s } = await engineWith((request) => {
      if (request.url === '/tasks/task_B')
        return { body: { data: task('task_B', jobId, 1, 'completed', 4) } };
      return { status: 500 };
    });
    jobId = (await strandedJob(s)).id;
    await s.store.transition(jobId, 'running', { task_id: 'task_A' }, { task: 'task_A' });
    await s.ledger.reserve({ jobId, tenant: 'default' }, 500_000);
    const update = { jobId, taskId: 'task_B', statusHint: 'completed', recheck: 0 };
    expect(await engine.settle(update)).toEqual({
      kind: 'done',
      result: { duplicate: 'task_B', charged: true },
    });
    // A repeated webhook of the same task charges nothing more.
    expect(await engine.settle(update)).toEqual({
      kind: 'done',
      result: { duplicate: 'task_B', charged: false },
    });
    const job = await s.store.get(jobId);
    expect(job).toMatchObject({ state: 'running', task_id: 'task_A', duplicate_task_ids: 'task_B' });
    expect(job?.duplicate_cost_micro_usd).toBe(120_000);
    // The job's own reservation is untouched: its own run settles it.
    expect(await s.ledger.reservationOf(jobId)).toBe(500_000);
    const charges = await s.ledger.chargesOf(jobId, [`${jobId}#task-task_B`]);
    expect(charges).toEqual([
      expect.objectContaining({
        kind: 'duplicate',
        taskId: 'task_B',
        attempt: 1,
        microUsd: 120_000,
        ms: 4000,
      }),
    ]);
    const today = new Date().toISOString().slice(0, 10);
    const { costReport } = await import('../money/costs.js');
    const report = await costReport(s.redis, s.keys, { from: today, to: today, groupBy: [] });
    expect(report.total).toMatchObject({
      micro_usd: 120_000,
      jobs: 0,
      duplicates: 1,
      duplicate_micro_usd: 120_000,
    });
  });

  it('whose own webhook names another job is never charged to this one', async () => {
    let jobId = '';
    const { engine, services: s } = await engineWith((request) => {
      if (request.url === '/tasks/task_X')
        return { body: { data: task('task_X', 'job_01ARZ3NDEKTSV4RRFFQ69G5FAV', 1, 'completed', 9) } };
      return { status: 500 };
    });
    jobId = (await strandedJob(s)).id;
    await s.store.transition(jobId, 'running', { task_id: 'task_A' }, { task: 'task_A' });
    const outcome = await engine.settle({ jobId, taskId: 'task_X', statusHint: 'completed', recheck: 0 });
    expect(outcome).toEqual({ kind: 'done', result: { skipped: 'foreign-task' } });
    expect(await s.ledger.chargeIdOfTask('task_X')).toBeUndefined();
  });

  it('that was a billed failure retried as a new attempt is not charged again', async () => {
    let jobId = '';
    const { engine, services: s } = await engineWith((request) => {
      if (request.url === '/tasks/task_F') return { body: { data: task('task_F', jobId, 1, 'failed', 2) } };
      return { status: 500 };
    });
    jobId = (await strandedJob(s)).id;
    // Attempt 1's task failed, billed: charged on its own line, and the job went back in line.
    await s.store.transition(jobId, 'queued', { failed_task_id: 'task_F' }, { from: ['submitting'] });
    await s.ledger.charge({
      jobId,
      chargeId: `${jobId}#attempt-1`,
      taskId: 'task_F',
      kind: 'retried_failure',
      tenant: 'default',
      day: new Date().toISOString().slice(0, 10),
      resolution: '720p',
      ms: 2000,
      microUsd: 60_000,
      priceVersion: 'test',
    });
    // Its webhook once more, late.
    const outcome = await engine.settle({
      jobId,
      taskId: 'task_F',
      statusHint: 'failed',
      recheck: 0,
      attempt: 1,
    });
    expect(outcome).toEqual({ kind: 'done', result: { skipped: 'charged already' } });
    expect((await s.store.get(jobId))?.duplicate_task_ids).toBeUndefined();
  });
});
