import { afterAll, describe, expect, it } from 'vitest';
import { createKeys } from '../infra/keys.js';
import { createQueues } from '../model/catalog.js';
import { newBatchId } from '../model/ids.js';
import { JobStore } from '../model/job-store.js';
import { FairQueue } from '../scheduling/fair-queue.js';
import { queuedJobRecord, testRedisClient, uniquePrefix } from '../testing/index.js';
import { type BatchRecord, BatchStore } from './batch-store.js';

const redis = testRedisClient();
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const close of closers) await close();
  await redis.quit();
});

function setup() {
  const keys = createKeys(uniquePrefix('batch'));
  const store = new JobStore(redis, keys);
  const queues = createQueues(redis, keys);
  closers.push(() => queues.close());
  // A buffer of 0 hands nothing to BullMQ: the lines are what these tests look at.
  const fair = new FairQueue(redis, keys, queues, { buffer: 0 });
  return { keys, store, fair, batches: new BatchStore(redis, keys, store) };
}

function staged(id: string): BatchRecord {
  return {
    id,
    tenant: 'acme',
    mode: 'atomic',
    stored_status: 'validating',
    total: 0,
    invalid_rows: 0,
    estimated_micro_usd: 0,
    estimated_ms: {},
    created_at: new Date().toISOString(),
  };
}

const rowsOf = (batchId: string, n: number) =>
  Array.from({ length: n }, (_, i) => queuedJobRecord({ tenant: 'acme', batch_id: batchId, line: i + 1 }));

describe('BatchStore', () => {
  it('writes a chunk of rows with their line index and counters, never over an existing record', async () => {
    const { batches, store, keys } = setup();
    const id = newBatchId();
    await batches.stage(staged(id));
    const jobs = rowsOf(id, 3);
    await batches.addJobs(id, jobs);
    expect(await store.get(jobs[1]!.id)).toMatchObject({
      state: 'queued',
      line: 2,
      batch_id: id,
      timeline: [{ state: 'queued', at: jobs[1]!.created_at }],
    });
    expect(await redis.zrange(keys.batchJobs(id), 0, -1)).toEqual(jobs.map((j) => j.id));
    expect((await batches.get(id))?.counts.queued).toBe(3);
    // The same ids again: refused, and nothing counted twice.
    await expect(batches.addJobs(id, jobs)).rejects.toThrow(/already existed/);
    expect((await batches.get(id))?.counts.queued).toBe(3);
  });

  it('lets the janitor remove an upload whose API process died before the commit', async () => {
    const { batches, keys } = setup();
    const id = newBatchId();
    await batches.stage(staged(id));
    await batches.addJobs(id, rowsOf(id, 1200));
    expect(await batches.abandonedUploads(60_000)).not.toContain(id);
    const abandoned = await batches.abandonedUploads(0);
    expect(abandoned).toContain(id);
    for (const batchId of abandoned) await batches.discard(batchId);
    const left = await redis.keys(`{${keys.prefix}}:*`);
    // Only BullMQ's own queue metadata stays (the queues exist whatever the batches do).
    expect(left.filter((k) => !k.endsWith(':meta'))).toEqual([]);
  });

  it('never removes an upload that is still writing, and stops one that was removed', async () => {
    const { batches, keys } = setup();
    const slow = newBatchId();
    await batches.stage(staged(slow));
    await batches.addJobs(slow, rowsOf(slow, 10).slice(0, 5));
    // The janitor read its list a while ago; the upload wrote a chunk since: it lives on.
    const listedAt = Date.now() - 1;
    await new Promise((r) => setTimeout(r, 5));
    await batches.addJobs(slow, rowsOf(slow, 10).slice(5));
    expect(await batches.discard(slow, listedAt)).toBe(false);
    await batches.commit(slow, 'acme', { total: 10 });
    expect((await batches.get(slow))?.counts.queued).toBe(10);
    expect(await batches.discard(slow)).toBe(false); // committed: not the janitor's any more

    // An upload silent past the janitor's age is removed; its next chunk and its commit fail
    // with a clear error and leave nothing behind.
    const dead = newBatchId();
    await batches.stage(staged(dead));
    const rows = rowsOf(dead, 4);
    await batches.addJobs(dead, rows.slice(0, 2));
    expect(await batches.discard(dead, Date.now() + 1)).toBe(true);
    await expect(batches.addJobs(dead, rows.slice(2))).rejects.toMatchObject({ code: 'UPLOAD_EXPIRED' });
    await expect(batches.commit(dead, 'acme', { total: 4 })).rejects.toMatchObject({
      code: 'UPLOAD_EXPIRED',
    });
    expect(await batches.get(dead)).toBeUndefined();
    for (const row of rows) expect(await redis.exists(keys.job(row.id))).toBe(0);
    expect(await redis.exists(keys.batchJobs(dead), keys.batchCounts(dead))).toBe(0);
  });

  it('resumes lining up a committed batch where a dead process stopped, each row once', async () => {
    const { batches, fair, keys } = setup();
    const id = newBatchId();
    await batches.stage(staged(id));
    const jobs = rowsOf(id, 25);
    await batches.addJobs(id, jobs);
    await batches.commit(id, 'acme', { total: 25 });
    expect(await batches.unlined(0)).toContain(id);
    // As if the process died after lining up the first 10 rows.
    const multi = redis.multi();
    fair.pushManyIn(
      multi,
      jobs.slice(0, 10).map((j) => j.id),
      'acme',
    );
    multi.hset(keys.batch(id), 'lined', '10');
    await multi.exec();
    expect(await batches.lineUp(id, fair, 4)).toBe(25);
    expect(await redis.lrange(`${keys.fairPrefix()}line:acme`, 0, -1)).toEqual(jobs.map((j) => j.id));
    expect(await batches.unlined(0)).not.toContain(id);
  });
});
