import { UnrecoverableError, Worker } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeys } from '../infra/keys.js';
import { testRedisClient, testRedisUrl, uniquePrefix, waitFor } from '../testing/index.js';
import { createQueues, enqueueSettle } from './catalog.js';

const redis = testRedisClient();
const keys = createKeys(uniquePrefix('catalog'));
const queues = createQueues(redis, keys);

afterAll(async () => {
  await queues.close();
  await redis.quit();
});

describe('enqueueSettle', () => {
  it('is one settle for duplicates, and revives a settle that had used up its attempts', async () => {
    const runs: string[] = [];
    let fail = true;
    const worker = new Worker(
      'settle',
      async (job) => {
        runs.push(job.id as string);
        if (fail) throw new UnrecoverableError('provider down for longer than the attempts last');
      },
      { connection: { url: testRedisUrl(), maxRetriesPerRequest: null }, prefix: keys.bullPrefix },
    );
    try {
      const payload = { jobId: 'job_A', taskId: 'task_1', statusHint: 'poll-completed', recheck: 0 };
      const first = await enqueueSettle(queues, payload);
      await waitFor(async () => (await first.isFailed()) || undefined);
      expect(runs).toHaveLength(1);
      fail = false;
      const again = await enqueueSettle(queues, payload);
      expect(again.id).toBe(first.id);
      await waitFor(
        async () => (await queues.settle.getJobState(first.id as string)) === 'completed' || undefined,
      );
      expect(runs).toEqual([first.id, first.id]);
      // Once done, the same update again is the same settle: nothing runs.
      await enqueueSettle(queues, payload);
      expect(await queues.settle.getJobState(first.id as string)).toBe('completed');
      expect(runs).toHaveLength(2);
    } finally {
      await worker.close();
    }
  });
});
