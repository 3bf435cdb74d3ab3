import { Worker } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeys } from '../infra/keys.js';
import { createQueues } from '../model/catalog.js';
import { testRedisClient, testRedisUrl, uniquePrefix, waitFor } from '../testing/index.js';
import { FairQueue } from './fair-queue.js';

const redis = testRedisClient();
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await redis.quit();
});

/** A fair queue with a real BullMQ worker that records the order jobs are dispatched in. */
function setup(buffer: number) {
  const keys = createKeys(uniquePrefix('fair'));
  const queues = createQueues(redis, keys);
  const fair = new FairQueue(redis, keys, queues, { buffer });
  const order: string[] = [];
  const worker = new Worker(
    'dispatch',
    async (job) => {
      order.push(job.data.jobId as string);
    },
    {
      connection: { url: testRedisUrl(), maxRetriesPerRequest: null },
      prefix: keys.bullPrefix,
      autorun: false,
    },
  );
  worker.on('completed', () => void fair.kick());
  closers.push(
    () => queues.close(),
    () => worker.close(),
  );
  return { fair, order, worker };
}

const tenantOf = (jobId: string) => jobId.split('-')[0];

describe('FairQueue', () => {
  it('interleaves a newcomer with a tenant that queued 2,000 jobs first', async () => {
    const { fair, order, worker } = setup(4);
    for (let i = 0; i < 2000; i += 500) {
      const multi = redis.multi();
      for (let j = i; j < i + 500; j++) fair.pushIn(multi, `a-${j}`, 'a');
      await multi.exec();
    }
    await fair.kick();
    for (let i = 0; i < 10; i++) await fair.push(`b-${i}`, 'b');
    void worker.run();
    await waitFor(() => order.filter((id) => tenantOf(id) === 'b').length === 10, { timeoutMs: 30_000 });
    await worker.pause();
    // B's ten jobs went out within the next ~25 dispatches: the buffer handed over before B
    // arrived (4), then one B for one A.
    const lastB = order.findLastIndex((id) => tenantOf(id) === 'b');
    expect(lastB).toBeLessThan(25);
    // Each tenant's own jobs keep their order.
    const as = order.filter((id) => tenantOf(id) === 'a').map((id) => Number(id.split('-')[1]));
    expect(as).toEqual([...as].sort((x, y) => x - y));
  });

  it('shares dispatch by weight', async () => {
    const { fair, order, worker } = setup(1);
    await fair.setWeight('heavy', 3);
    const multi = redis.multi();
    for (let j = 0; j < 200; j++) {
      fair.pushIn(multi, `heavy-${j}`, 'heavy');
      fair.pushIn(multi, `light-${j}`, 'light');
    }
    await multi.exec();
    await fair.kick();
    void worker.run();
    await waitFor(() => order.length >= 101, { timeoutMs: 30_000 });
    await worker.pause();
    const first100 = order.slice(1, 101);
    const heavy = first100.filter((id) => tenantOf(id) === 'heavy').length;
    expect(heavy).toBeGreaterThanOrEqual(73);
    expect(heavy).toBeLessThanOrEqual(77);
  });

  it('does not let an idle tenant bank credit', async () => {
    const { fair, order, worker } = setup(1);
    // Tenant x has run alone for a while (its virtual start moved on by 60); tenant y was idle
    // all along and then arrives with 50 jobs.
    const xs = redis.multi();
    for (let j = 0; j < 1000; j++) fair.pushIn(xs, `x-${j}`, 'x');
    await xs.exec();
    await fair.kick();
    void worker.run();
    await waitFor(() => order.length >= 60, { timeoutMs: 30_000 });
    await worker.pause();
    const multi = redis.multi();
    for (let j = 0; j < 50; j++) fair.pushIn(multi, `y-${j}`, 'y');
    await multi.exec();
    await fair.kick();
    const from = order.length;
    worker.resume();
    await waitFor(() => order.length >= from + 40, { timeoutMs: 30_000 });
    await worker.pause();
    // After y arrives they alternate; y does not get 60 turns in a row to "catch up".
    const window = order.slice(from + 2, from + 40);
    const ys = window.filter((id) => tenantOf(id) === 'y').length;
    expect(ys).toBeGreaterThanOrEqual(17);
    expect(ys).toBeLessThanOrEqual(21);
  });

  it('recovers picks a crash left between the pick and BullMQ', async () => {
    const keys = createKeys(uniquePrefix('fair'));
    const queues = createQueues(redis, keys);
    closers.push(() => queues.close());
    const fair = new FairQueue(redis, keys, queues, { buffer: 10 });
    await redis.zadd(`${keys.fairPrefix()}feeding`, Date.now() - 60_000, 'lost-1|7');
    expect(await fair.recover(10_000)).toBe(1);
    expect(await fair.recover(10_000)).toBe(0);
    const jobs = await queues.dispatch.getWaiting();
    expect(jobs.map((j) => [j.id, j.data.jobId])).toEqual([['lost-1-7', 'lost-1']]);
  });

  it('keeps a pick for recover() when its BullMQ add was lost (a failover between the add and its removal)', async () => {
    const keys = createKeys(uniquePrefix('fair'));
    const queues = createQueues(redis, keys);
    closers.push(() => queues.close());
    const fair = new FairQueue(redis, keys, queues, { buffer: 10 });
    const feeding = `${keys.fairPrefix()}feeding`;
    // Two picks; the add of one of them never reached the primary that now answers.
    const picked = Date.now() - 60_000;
    await redis.zadd(feeding, picked, 'kept-1|3', picked, 'lost-2|4');
    await queues.dispatch.add('job.dispatch', { jobId: 'kept-1' }, { jobId: 'kept-1-3' });
    expect(await fair.handedOver(['kept-1|3', 'lost-2|4'])).toBe(1);
    expect(await redis.zrange(feeding, 0, -1)).toEqual(['lost-2|4']);
    // recover() hands it over again, and only then is it out of `feeding`.
    expect(await fair.recover(10_000)).toBe(1);
    expect(await redis.zcard(feeding)).toBe(0);
    const jobs = await queues.dispatch.getWaiting();
    expect(jobs.map((j) => j.data.jobId).sort()).toEqual(['kept-1', 'lost-2']);
  });
});
