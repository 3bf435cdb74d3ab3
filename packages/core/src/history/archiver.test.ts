import { afterEach, describe, expect, it } from 'vitest';
import { loadCoreConfig } from '../config/common.js';
import { jobView } from '../contract/job-view.js';
import { createServices, type Services } from '../engine/services.js';
import type { JobRecord } from '../model/record.js';
import { queuedJobRecord, testDatabase, testLogger, testRedisUrl, uniquePrefix } from '../testing/index.js';
import { Archiver } from './archiver.js';
import { historyCostReport, lineItems } from './costs.js';

let services: Services | undefined;
let drop: (() => Promise<void>) | undefined;

afterEach(async () => {
  await services?.close();
  await drop?.();
  services = drop = undefined;
});

async function start() {
  const db = await testDatabase();
  drop = db.drop;
  const config = loadCoreConfig({
    REDIS_URL: testRedisUrl(),
    REDIS_PREFIX: uniquePrefix('archive'),
    WEBHOOK_SECRET: 'archive-test-secret-0123456789',
    DATABASE_URL: db.url,
  });
  services = await createServices({ config, logger: testLogger(), role: 'producer', name: 'archive-test' });
  return services;
}

/** A job that ran to `completed` and was charged, as the engine leaves it. */
async function finishedJob(s: Services, overrides: Partial<JobRecord> = {}): Promise<JobRecord> {
  const record = queuedJobRecord(overrides);
  await s.store.create(record);
  await s.store.transition(record.id, 'submitting', { attempt: 1 });
  const moved = await s.store.transition(record.id, 'completed', {
    task_id: `task_${record.id}`,
    billed_ms: 3000,
    cost_micro_usd: 90_000,
    price_version: 'test',
    finished_at: new Date().toISOString(),
  });
  expect(moved.ok).toBe(true);
  await s.ledger.charge({
    jobId: record.id,
    taskId: `task_${record.id}`,
    attempt: 1,
    tenant: record.tenant,
    day: new Date().toISOString().slice(0, 10),
    resolution: '720p',
    ms: 3000,
    microUsd: 90_000,
    priceVersion: 'test',
  });
  return (await s.store.get(record.id)) as JobRecord;
}

const rows = async (s: Services, table: string) =>
  Number((await s.db!.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n);

describe('the archiver', () => {
  it('writes what a terminal transition and a charge queued, once, and only then takes it off the outbox', async () => {
    const s = await start();
    const job = await finishedJob(s);
    expect(await s.redis.zcard(s.keys.outboxJobs())).toBe(1);
    expect(await s.redis.zcard(s.keys.outboxCharges())).toBe(1);
    const archiver = new Archiver(s, s.db!, { retentionMs: 3_600_000, logger: testLogger() });
    expect(await archiver.pass()).toMatchObject({ jobs: 1, charges: 1 });
    expect(await archiver.backlog()).toMatchObject({ jobs: 0, charges: 0, oldest_ms: null });
    const {
      rows: [row],
    } = await s.db!.query<{ record: JobRecord; cost_micro_usd: number }>(
      'SELECT record, cost_micro_usd FROM recast_jobs WHERE id = $1',
      [job.id],
    );
    expect(row?.record).toEqual(job);
    expect(row?.cost_micro_usd).toBe(90_000);
    const items = [];
    const today = new Date().toISOString().slice(0, 10);
    for await (const item of lineItems(s.db!, s.redis, s.keys, { from: today, to: today })) items.push(item);
    expect(items).toEqual([
      expect.objectContaining({
        charge_id: job.id,
        task_id: `task_${job.id}`,
        micro_usd: 90_000,
        billed_ms: 3000,
        kind: 'run',
        archived: true,
      }),
    ]);
  });

  it('loses and duplicates nothing when it dies between the write and the mark', async () => {
    const s = await start();
    await finishedJob(s);
    await finishedJob(s);
    const dying = new Archiver(s, s.db!, {
      retentionMs: 3_600_000,
      logger: testLogger(),
      afterWrite: () => {
        throw new Error('killed between the write and the mark');
      },
    });
    await expect(dying.pass()).rejects.toThrow('killed');
    // The charges were written, not marked: still on the outbox.
    expect(await s.redis.zcard(s.keys.outboxCharges())).toBe(2);
    const today = new Date().toISOString().slice(0, 10);
    // Meanwhile the report counts them once (written, and not counted again from the outbox).
    const during = await historyCostReport(s.db!, s.redis, s.keys, { from: today, to: today, groupBy: [] });
    expect(during).toMatchObject({ source: 'history', total: { micro_usd: 180_000, jobs: 2 } });
    await new Archiver(s, s.db!, { retentionMs: 3_600_000, logger: testLogger() }).drain();
    expect(await rows(s, 'recast_charges')).toBe(2);
    expect(await rows(s, 'recast_jobs')).toBe(2);
    const sums = await s.db!.query<{ micro_usd: number; runs: number }>(
      'SELECT micro_usd, runs FROM recast_cost_days',
    );
    expect(sums.rows).toEqual([{ micro_usd: 180_000, runs: 2 }]);
    expect(
      await historyCostReport(s.db!, s.redis, s.keys, { from: today, to: today, groupBy: [] }),
    ).toMatchObject({
      total: { micro_usd: 180_000, jobs: 2 },
    });
  });

  it('keeps a finished job in Redis until it is archived, evicts it after the retention, and reads it back the same', async () => {
    const s = await start();
    const job = await finishedJob(s);
    const archiver = new Archiver(s, s.db!, { retentionMs: 50, logger: testLogger() });
    // Not archived yet: nothing is evicted, however old.
    await new Promise((r) => setTimeout(r, 100));
    await s.redis.zadd(s.keys.archivedJobs(), 0, 'job_never_archived');
    expect((await archiver.pass()).evicted.jobs).toBe(0);
    expect(await s.store.exists(job.id)).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    const later = await archiver.pass();
    expect(later.evicted).toMatchObject({ jobs: 1, charges: 1 });
    expect(await s.store.exists(job.id)).toBe(false);
    expect(await s.redis.zscore(s.keys.jobIndex(), job.id)).toBeNull();
    expect(await s.redis.hget(s.keys.ledgerCharged(), job.id)).toBeNull();
    // Reads do not care where it lives.
    const read = await s.records.job(job.id);
    expect(jobView(read!)).toEqual(jobView(job));
    const page = await s.records.listJobs({ order: 'desc', limit: 10, tenant: job.tenant });
    expect(page.jobs.map((j) => j.id)).toEqual([job.id]);
  });

  it('archives a later copy of a finished job (a note written after it ended) over the earlier one', async () => {
    const s = await start();
    const job = await finishedJob(s);
    const archiver = new Archiver(s, s.db!, { retentionMs: 3_600_000, logger: testLogger() });
    await archiver.pass();
    await s.store.annotate(
      job.id,
      { state: 'completed', taskId: job.task_id! },
      { output_retention: 'stored' },
    );
    expect(await s.redis.zcard(s.keys.outboxJobs())).toBe(1);
    await archiver.pass();
    const {
      rows: [row],
    } = await s.db!.query<{ record: JobRecord }>('SELECT record FROM recast_jobs WHERE id = $1', [job.id]);
    expect(row?.record).toMatchObject({ output_retention: 'stored', notes: 1 });
  });
});
