import { afterAll, describe, expect, it } from 'vitest';
import { createKeys } from '../infra/keys.js';
import { createQueues } from '../model/catalog.js';
import { JobStore } from '../model/job-store.js';
import { FairQueue } from '../scheduling/fair-queue.js';
import { queuedJobRecord as record, testRedisClient, uniquePrefix, waitFor } from '../testing/index.js';
import { JobCreator } from './creator.js';

const redis = testRedisClient();
const keys = createKeys(uniquePrefix('creator'));
const store = new JobStore(redis, keys);
const queues = createQueues(redis, keys);
const fair = new FairQueue(redis, keys, queues, { buffer: 10_000 });
const creator = new JobCreator(store, fair);

afterAll(async () => {
  await queues.close();
  await redis.quit();
});

describe('JobCreator (group commit)', () => {
  it('creates every record and hands each job to dispatch when many arrive in the same turn', async () => {
    const jobs = Array.from({ length: 300 }, () => record());
    await Promise.all(jobs.map((job) => creator.create(job)));
    for (const job of jobs) expect((await store.get(job.id))?.state).toBe('queued');
    const dispatched = await waitFor(async () => {
      const waiting = await queues.dispatch.getWaiting(0, -1);
      return waiting.length === jobs.length ? waiting : undefined;
    });
    expect(new Set(dispatched.map((j) => j.data.jobId))).toEqual(new Set(jobs.map((j) => j.id)));
  });

  it('rejects only the job that already exists, not the others sharing its transaction', async () => {
    const existing = record();
    await creator.create(existing);
    const fresh = [record(), record()];
    const outcomes = await Promise.allSettled([
      creator.create(fresh[0]!),
      creator.create({ ...existing, state: 'failed' }),
      creator.create(fresh[1]!),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'CONFLICT' });
    expect((await store.get(existing.id))?.state).toBe('queued');
    for (const job of fresh) expect(await store.get(job.id)).toBeDefined();
  });
});
