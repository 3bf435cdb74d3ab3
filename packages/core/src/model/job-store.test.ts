import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeys } from '../infra/keys.js';
import { queuedJobRecord, testRedisClient, uniquePrefix } from '../testing/index.js';
import { newJobId } from './ids.js';
import { JobStore } from './job-store.js';
import { canTransition, JOB_STATES, type JobState, TERMINAL_STATES } from './states.js';

const redis = testRedisClient();
const keys = createKeys(uniquePrefix('store'));
let store: JobStore;

beforeAll(() => {
  store = new JobStore(redis, keys);
});
afterAll(async () => {
  await redis.quit();
});

const record = queuedJobRecord;

describe('job state machine', () => {
  it('never leaves a terminal state', () => {
    for (const terminal of TERMINAL_STATES) {
      for (const to of JOB_STATES) expect(canTransition(terminal, to)).toBe(false);
    }
  });

  it('never moves back along the happy path', () => {
    const path: JobState[] = ['submitting', 'submitted', 'running', 'completed'];
    for (let i = 0; i < path.length; i++) {
      for (let j = 0; j < i; j++) expect(canTransition(path[i]!, path[j]!)).toBe(false);
    }
  });
});

describe('JobStore', () => {
  it('round-trips a record through its Redis hash', async () => {
    const job = record({ metadata: { team: 'a', n: 1 }, duration_seconds: 7.5 });
    await store.create(job);
    // The creation starts the job's timeline (create-1.lua).
    expect(await store.get(job.id)).toEqual({ ...job, timeline: [{ state: 'queued', at: job.created_at }] });
    expect(await store.get(newJobId())).toBeUndefined();
  });

  it('brings every job waiting on the provider forward to now after an outage, never back', async () => {
    const ownKeys = createKeys(uniquePrefix('store-outage'));
    const own = new JobStore(redis, ownKeys);
    const [a, b, c] = [record(), record(), record()];
    for (const job of [a, b, c]) {
      await own.create(job);
      await own.transition(job.id, 'submitting', { attempt: 1 });
      await own.transition(job.id, 'submitted', { task_id: `task_${job.id}` });
    }
    const now = Date.now();
    await own.reconcileLater(a.id, 300_000, now);
    await own.reconcileLater(b.id, 600_000, now);
    await own.reconcileLater(c.id, -5_000, now); // overdue already: stays where it is
    expect(await own.dueForReconcile(now, 10)).toEqual([c.id]);
    expect(await own.reconcileAllNow(now)).toBe(2);
    expect((await own.dueForReconcile(now, 10)).sort()).toEqual([a.id, b.id, c.id].sort());
    expect(Number(await redis.zscore(ownKeys.reconcile(), ownKeys.job(c.id)))).toBe(now - 5_000);
    expect(Number(await redis.zscore(ownKeys.reconcile(), ownKeys.job(a.id)))).toBe(now);
  });

  it('keeps a timeline of every state the job entered, written with each move', async () => {
    const job = record();
    await store.create(job);
    await store.transition(job.id, 'submitting', { attempt: 1 });
    await store.transition(job.id, 'submitted', { task_id: 'task_t' });
    // A refused move is not a move: it leaves no entry.
    expect((await store.transition(job.id, 'waiting_budget', {})).ok).toBe(false);
    await store.transition(job.id, 'running', {});
    await store.transition(job.id, 'completed', {});
    const after = await store.get(job.id);
    expect(after?.timeline?.map((entry) => entry.state)).toEqual([
      'queued',
      'submitting',
      'submitted',
      'running',
      'completed',
    ]);
    // Each entry's time is the updated_at its move wrote: the last one is the record's.
    expect(after?.timeline?.at(-1)?.at).toBe(after?.updated_at);
    const times = after!.timeline!.map((entry) => Date.parse(entry.at));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it("starts a task's deadline when it waits on the provider, looks at it by then, and clears it for a new attempt", async () => {
    const timed = new JobStore(redis, keys, undefined, undefined, 30);
    const job = record();
    await timed.create(job);
    expect((await timed.get(job.id))?.timeout_seconds).toBe(30);
    await timed.transition(job.id, 'submitting', { attempt: 1 });
    expect((await timed.get(job.id))?.deadline_ms).toBeUndefined();
    const before = Date.now();
    await timed.transition(job.id, 'submitted', { task_id: 'task_d' });
    const deadline = (await timed.get(job.id))!.deadline_ms!;
    expect(deadline).toBeGreaterThanOrEqual(before + 30_000 - 1_000);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 30_000 + 1_000);
    // The default look (5 min) is later than the deadline: the deadline is the look.
    expect(Number(await redis.zscore(keys.reconcile(), keys.job(job.id)))).toBe(deadline);
    // Running keeps the deadline of the task (it does not restart).
    await timed.transition(job.id, 'running', {});
    expect((await timed.get(job.id))?.deadline_ms).toBe(deadline);
    // Back in line for a new attempt: the next task gets a deadline of its own.
    await timed.transition(job.id, 'queued', {});
    expect((await timed.get(job.id))?.deadline_ms).toBeUndefined();
    // A job that gives its own timeout keeps it; without a default, a job has no deadline.
    const own = record({ timeout_seconds: 5 });
    await timed.create(own);
    expect((await timed.get(own.id))?.timeout_seconds).toBe(5);
    const none = record();
    await store.create(none);
    await store.transition(none.id, 'submitted', { task_id: 'task_n' });
    expect((await store.get(none.id))?.deadline_ms).toBeUndefined();
  });

  it('bounds the timeline of a job moved without end, keeping its creation and its latest moves', async () => {
    const job = record();
    await store.create(job);
    for (let i = 0; i < 150; i++) {
      await store.transition(job.id, 'waiting_budget', {});
      await store.transition(job.id, 'queued', {});
    }
    const hash = await redis.hget(keys.job(job.id), 'timeline');
    expect(hash!.length).toBeLessThanOrEqual(4000);
    const timeline = (await store.get(job.id))!.timeline!;
    expect(timeline[0]).toEqual({ state: 'queued', at: job.created_at });
    expect(timeline.at(-1)?.state).toBe('queued');
    expect(timeline.length).toBeGreaterThan(50);
  });

  it('refuses to overwrite an existing record', async () => {
    const job = record();
    await store.create(job);
    await expect(store.create(job)).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('moves forward and writes fields in the same step', async () => {
    const job = record();
    await store.create(job);
    const moved = await store.transition(job.id, 'submitting', { attempt: 1 });
    expect(moved).toMatchObject({ ok: true, from: 'queued', state: 'submitting', version: 2 });
    const again = await store.transition(job.id, 'submitted', { task_id: 'task_1' });
    expect(again.ok).toBe(true);
    const after = await store.get(job.id);
    expect(after).toMatchObject({ state: 'submitted', task_id: 'task_1', attempt: 1, version: 3 });
  });

  it('refuses a backwards or duplicate update and reports the current state', async () => {
    const job = record();
    await store.create(job);
    await store.transition(job.id, 'submitting', { attempt: 1 });
    await store.transition(job.id, 'running');
    await store.transition(job.id, 'completed', { cost_micro_usd: 60_000 });
    expect(await store.transition(job.id, 'running')).toEqual({ ok: false, state: 'completed', version: 4 });
    expect(await store.transition(job.id, 'completed', { cost_micro_usd: 1 })).toMatchObject({ ok: false });
    expect((await store.get(job.id))?.cost_micro_usd).toBe(60_000);
  });

  it('lets exactly one of many concurrent updates win', async () => {
    const job = record();
    await store.create(job);
    await store.transition(job.id, 'submitting', { attempt: 1 });
    const results = await Promise.all(
      Array.from({ length: 25 }, (_, i) => store.transition(job.id, 'completed', { task_id: `t${i}` })),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
  });

  it('guards on the attempt number', async () => {
    const job = record();
    await store.create(job);
    await store.transition(job.id, 'submitting', { attempt: 2 });
    expect((await store.transition(job.id, 'submitted', {}, { attempt: 1 })).ok).toBe(false);
    expect((await store.transition(job.id, 'submitted', {}, { attempt: 2 })).ok).toBe(true);
  });

  it('deletes fields set to null and reports a missing job', async () => {
    const job = record({ error_code: 'X', error_message: 'boom' });
    await store.create(job);
    await store.transition(job.id, 'submitting', { error_code: null, error_message: null });
    const after = await store.get(job.id);
    expect(after?.error_code).toBeUndefined();
    await expect(store.transition(newJobId(), 'submitting')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('keeps a job waiting on the provider in the reconciliation index, whatever a stale reader asks', async () => {
    const inIndex = async (id: string) => (await redis.zscore(keys.reconcile(), keys.job(id))) !== null;
    const job = record();
    await store.create(job);
    await store.transition(job.id, 'submitting', { attempt: 1 });
    await store.transition(job.id, 'submitted', { task_id: 'task_1' });
    expect(await inIndex(job.id)).toBe(true);
    // A reconcile pass read the job terminal on a primary that then died: its removal comes to a
    // primary where the job still waits on the provider, and changes nothing.
    expect(await store.forgetReconcile(job.id)).toBe(false);
    expect(await inIndex(job.id)).toBe(true);
    // A job that no longer waits (its index entry left behind by hand here) is dropped.
    await store.transition(job.id, 'completed', { finished_at: new Date().toISOString() });
    await redis.zadd(keys.reconcile(), Date.now(), keys.job(job.id));
    expect(await store.forgetReconcile(job.id)).toBe(true);
    expect(await inIndex(job.id)).toBe(false);
    // And one with no record at all.
    const gone = newJobId();
    await redis.zadd(keys.reconcile(), Date.now(), keys.job(gone));
    expect(await store.forgetReconcile(gone)).toBe(true);
  });
});
