import { Writable } from 'node:stream';
import { loadBatchView } from '@recast/core/batches';
import { enqueueJobCallback, generateWebhookSecret, verifyWebhook } from '@recast/core/callbacks';
import { loadCoreConfig } from '@recast/core/config';
import { jobView } from '@recast/core/contract';
import { createServices } from '@recast/core/engine';
import { createLogger } from '@recast/core/infra';
import type { JobRecord } from '@recast/core/model';
import type { LookupFn } from '@recast/core/net';
import {
  queuedJobRecord,
  startTestReceiver,
  type TestReceiver,
  testRedisClient,
  testRedisUrl,
  uniquePrefix,
  waitFor,
} from '@recast/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningNotifyWorker, startNotifyWorker } from './index.js';

const secrets = [generateWebhookSecret(), 'a-raw-secret-of-at-least-16-chars'];
const redis = testRedisClient();
const logLines: string[] = [];
const logger = createLogger({
  level: 'debug',
  destination: new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  }),
});
// A name that resolves to the receiver's loopback address without being allow-listed.
// The services as every process builds them, on this test's Redis connection and prefix.
const services = await createServices({
  config: loadCoreConfig({
    REDIS_URL: testRedisUrl(),
    REDIS_PREFIX: uniquePrefix('notify'),
    WEBHOOK_SECRET: 'notify-test-secret-0123',
  }),
  logger,
  role: 'producer',
  name: 'notify-test',
  redis,
});
const { keys, store } = services;
const lookup: LookupFn = async (hostname) => {
  if (hostname === 'hooks.internal.test') return [{ address: '127.0.0.1', family: 4 }];
  throw Object.assign(new Error(`unexpected lookup of ${hostname}`), { code: 'ENOTFOUND' });
};
let receiver: TestReceiver;
let running: RunningNotifyWorker;

beforeAll(async () => {
  receiver = await startTestReceiver();
  running = await startNotifyWorker({
    redisTarget: testRedisUrl(),
    keys,
    store,
    batchView: (batchId) => loadBatchView(services, batchId),
    logger,
    secrets,
    urlPolicy: { allowHosts: [receiver.host] },
    timeoutMs: 2_000,
    concurrency: 4,
    lookup,
  });
});
afterAll(async () => {
  await running.close();
  await receiver.close();
  await services.close();
  await redis.quit();
});

async function finishedJob(path: string, overrides: Partial<JobRecord> = {}): Promise<JobRecord> {
  const record = queuedJobRecord({
    tenant: 'acme',
    state: 'completed',
    callback_url: receiver.url(path),
    task_id: 'task_1',
    provider_status: 'completed',
    output_url: 'https://cdn.example.com/out.mp4',
    billed_ms: 5_000,
    cost_micro_usd: 250_000,
    finished_at: new Date().toISOString(),
    metadata: { order: 42 },
    ...overrides,
  });
  await store.create(record);
  // As stored: with this deployment's defaults (its deadline) filled in.
  return (await store.get(record.id))!;
}

async function settled(record: JobRecord) {
  const id = `notify-${record.id}-${record.state}`;
  return waitFor(
    async () => {
      // State first, then the job: a snapshot taken before the state read could predate the move.
      const state = await running.queue.getJobState(id);
      if (state !== 'completed' && state !== 'failed') return undefined;
      return { job: (await running.queue.getJob(id))!, state };
    },
    { what: `${id} to finish` },
  );
}

const quietly = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const fastRetries = { attempts: 5, backoff: { type: 'fixed', delay: 100 } };

describe('notify worker', () => {
  it('delivers a completed job once, signed under both secrets, with the job view as data', async () => {
    const record = await finishedJob('/done');
    await enqueueJobCallback(running.queue, record);
    expect((await settled(record)).state).toBe('completed');
    await quietly(200);
    const deliveries = receiver.received('/done');
    expect(deliveries).toHaveLength(1);
    const [got] = deliveries;
    expect(got!.headers['webhook-id']).toBe(`msg_${record.id}_completed`);
    expect(String(got!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    for (const secret of secrets) {
      expect(verifyWebhook({ headers: got!.headers, body: got!.body, secrets: [secret] }).ok).toBe(true);
    }
    expect(JSON.parse(got!.body)).toEqual({
      type: 'job.completed',
      timestamp: record.finished_at,
      data: JSON.parse(JSON.stringify(jobView(record))),
    });
  });

  it('retries a failing receiver with the same webhook-id and a fresh timestamp each attempt', async () => {
    const record = await finishedJob('/flaky', { state: 'failed', error_code: 'PROVIDER_TASK_FAILED' });
    receiver.script('/flaky', 500, 500, 200);
    // Over a second apart, so each attempt's unix-seconds timestamp differs.
    await enqueueJobCallback(running.queue, record, { backoff: { type: 'fixed', delay: 1_100 } });
    const { job, state } = await settled(record);
    expect(state).toBe('completed');
    // BullMQ 5 counts the successful attempt too.
    expect(job.attemptsMade).toBe(3);
    const deliveries = receiver.received('/flaky');
    expect(deliveries).toHaveLength(3);
    expect(new Set(deliveries.map((d) => d.headers['webhook-id']))).toEqual(
      new Set([`msg_${record.id}_failed`]),
    );
    const stamps = deliveries.map((d) => Number(d.headers['webhook-timestamp']));
    expect(stamps[1]).toBeGreaterThan(stamps[0]!);
    expect(stamps[2]).toBeGreaterThan(stamps[1]!);
    for (const d of deliveries)
      expect(verifyWebhook({ headers: d.headers, body: d.body, secrets }).ok).toBe(true);
    expect(JSON.parse(deliveries[2]!.body).type).toBe('job.failed');
    const attempts = logLines.filter((l) => l.includes(record.id)).map((l) => JSON.parse(l));
    expect(attempts.map((l) => [l.attempt, l.status, l.msg])).toEqual([
      [1, 500, 'callback failed; will retry'],
      [2, 500, 'callback failed; will retry'],
      [3, 200, 'callback delivered'],
    ]);
  });

  it('stops at 410 Gone: one delivery, no retry', async () => {
    const record = await finishedJob('/gone', { state: 'cancelled' });
    receiver.script('/gone', 410, 200);
    await enqueueJobCallback(running.queue, record, fastRetries);
    const { job, state } = await settled(record);
    expect(state).toBe('failed');
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toMatch(/410/);
    await quietly(400);
    expect(receiver.received('/gone')).toHaveLength(1);
    const line = logLines.find((l) => l.includes('receiver asked to stop') && l.includes(record.id));
    expect(JSON.parse(line!)).toMatchObject({ jobId: record.id, tenant: 'acme', attempt: 1, status: 410 });
  });

  it('never calls a URL that resolves to a private address, and does not retry it', async () => {
    const port = receiver.host.split(':')[1];
    const record = await finishedJob('/unused', {
      callback_url: `http://hooks.internal.test:${port}/private`,
    });
    await enqueueJobCallback(running.queue, record, fastRetries);
    const { job, state } = await settled(record);
    expect(state).toBe('failed');
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toMatch(/refused.*127\.0\.0\.1/);
    await quietly(400);
    expect(receiver.received('/private')).toHaveLength(0);
  });

  it('delivers once when the callback is enqueued twice, before or after delivery', async () => {
    const record = await finishedJob('/twice');
    await Promise.all([enqueueJobCallback(running.queue, record), enqueueJobCallback(running.queue, record)]);
    await settled(record);
    await enqueueJobCallback(running.queue, record);
    await quietly(400);
    expect(receiver.received('/twice')).toHaveLength(1);
  });

  it('skips a message whose job record is gone', async () => {
    const record = queuedJobRecord({ state: 'completed', callback_url: receiver.url('/missing') });
    await enqueueJobCallback(running.queue, record);
    const { job, state } = await settled(record);
    expect(state).toBe('completed');
    expect(job.returnvalue).toEqual({ skipped: 'missing' });
    expect(receiver.received('/missing')).toHaveLength(0);
  });

  it('logs ids, attempts and statuses, but never a secret or a signature', async () => {
    const record = await finishedJob('/logged?token=receiver-secret-token');
    await enqueueJobCallback(running.queue, record);
    await settled(record);
    const line = logLines.find((l) => l.includes('callback delivered') && l.includes(record.id));
    expect(JSON.parse(line!)).toMatchObject({ jobId: record.id, tenant: 'acme', attempt: 1, status: 200 });
    const all = logLines.join('\n');
    for (const secret of secrets) expect(all).not.toContain(secret);
    expect(all).not.toContain(secrets[0]!.slice('whsec_'.length));
    expect(all).not.toMatch(/v1,[A-Za-z0-9+/]{20}/);
    expect(all).not.toContain('receiver-secret-token');
  });
});
