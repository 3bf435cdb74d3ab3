import { afterAll, describe, expect, it } from 'vitest';
import { createKeys } from '../infra/keys.js';
import { queuedJobRecord, testRedisClient, uniquePrefix } from '../testing/index.js';
import { bullJobId, createAndEnqueue, createQueues } from './catalog.js';
import { JobStore } from './job-store.js';

const redis = testRedisClient();
const keys = createKeys(uniquePrefix('catalog'));
const store = new JobStore(redis, keys);
const queues = createQueues(redis, keys);

afterAll(async () => {
  await queues.close();
  await redis.quit();
});

const record = queuedJobRecord;

describe('createAndEnqueue (group commit)', () => {
  it('creates every record and its dispatch job when many arrive in the same turn', async () => {
    const jobs = Array.from({ length: 300 }, record);
    await Promise.all(jobs.map((job) => createAndEnqueue(store, queues, job)));
    for (const job of jobs) {
      expect((await store.get(job.id))?.state).toBe('queued');
      expect((await queues.dispatch.getJob(bullJobId(job.id)))?.data).toEqual({ jobId: job.id });
    }
  });

  it('rejects only the job that already exists, not the others sharing its transaction', async () => {
    const existing = record();
    await createAndEnqueue(store, queues, existing);
    const fresh = [record(), record()];
    const outcomes = await Promise.allSettled([
      createAndEnqueue(store, queues, fresh[0]!),
      createAndEnqueue(store, queues, { ...existing, state: 'failed' }),
      createAndEnqueue(store, queues, fresh[1]!),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'CONFLICT' });
    expect((await store.get(existing.id))?.state).toBe('queued');
    for (const job of fresh) expect(await store.get(job.id)).toBeDefined();
  });
});
