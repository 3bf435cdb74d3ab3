import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobView } from '../contract/job-view.js';
import { createKeys } from '../infra/keys.js';
import {
  createNotifyQueue,
  NOTIFY_JOB_OPTIONS,
  NotifyPayloadSchema,
  type NotifyQueue,
} from '../model/catalog.js';
import { JOB_STATES } from '../model/states.js';
import { queuedJobRecord, testRedisClient, uniquePrefix } from '../testing/index.js';
import { enqueueJobCallback, jobCallbackEvent } from './notify.js';
import { jobCallbackBody } from './payloads.js';

const redis = testRedisClient();
let queue: NotifyQueue;

beforeAll(() => {
  queue = createNotifyQueue(redis, createKeys(uniquePrefix('notify')));
});
afterAll(async () => {
  await queue.close();
  await redis.quit();
});

const finished = (state: 'completed' | 'failed' | 'cancelled') =>
  queuedJobRecord({
    state,
    callback_url: 'https://hooks.example.com/recast',
    finished_at: '2026-01-02T03:04:05.000Z',
  });

describe('enqueueJobCallback', () => {
  it('queues one message per terminal job, with a stable id and message id', async () => {
    const record = finished('completed');
    const job = await enqueueJobCallback(queue, record);
    expect(job?.id).toBe(`notify-${record.id}-completed`);
    expect(job?.name).toBe('job.notify');
    expect(NotifyPayloadSchema.parse(job?.data)).toEqual({
      kind: 'job',
      jobId: record.id,
      event: 'job.completed',
      messageId: `msg_${record.id}_completed`,
    });
    expect(job?.opts).toMatchObject({ attempts: 13, backoff: NOTIFY_JOB_OPTIONS.backoff });
  });

  it('adds nothing when called again for the same job and state', async () => {
    const record = finished('failed');
    await Promise.all([enqueueJobCallback(queue, record), enqueueJobCallback(queue, record)]);
    await enqueueJobCallback(queue, record);
    const ids = (await queue.getJobs(['waiting', 'delayed', 'active'])).map((job) => job.id);
    expect(ids.filter((id) => id === `notify-${record.id}-failed`)).toHaveLength(1);
  });

  it('does nothing without a callback_url or before a terminal state', async () => {
    expect(await enqueueJobCallback(queue, queuedJobRecord({ state: 'completed' }))).toBeUndefined();
    for (const state of JOB_STATES) {
      const record = queuedJobRecord({ state, callback_url: 'https://hooks.example.com/x' });
      const job = await enqueueJobCallback(queue, record);
      expect(job === undefined, state).toBe(jobCallbackEvent(state) === undefined);
    }
    expect(jobCallbackEvent('cancelled')).toBe('job.cancelled');
  });

  it('takes option overrides (tests shorten the backoff) but never a different job id', async () => {
    const record = finished('cancelled');
    const job = await enqueueJobCallback(queue, record, {
      attempts: 2,
      backoff: { type: 'fixed', delay: 10 },
    });
    expect(job?.opts).toMatchObject({ attempts: 2, backoff: { type: 'fixed', delay: 10 } });
    expect(job?.id).toBe(`notify-${record.id}-cancelled`);
  });
});

describe('NOTIFY_JOB_OPTIONS', () => {
  it('spreads 12 retries over about 17 hours', () => {
    const { attempts, backoff } = NOTIFY_JOB_OPTIONS;
    // BullMQ's exponential backoff: delay × 2^(retry − 1), jitter only shortening it.
    const waits = Array.from({ length: attempts - 1 }, (_, i) => backoff.delay * 2 ** i);
    const longest = waits.reduce((a, b) => a + b, 0) / 3_600_000;
    expect(longest).toBeGreaterThan(16.5);
    expect(longest).toBeLessThan(17.5);
    expect(longest * (1 - backoff.jitter)).toBeGreaterThan(13);
  });
});

describe('jobCallbackBody', () => {
  it('wraps the public job view in the Standard Webhooks envelope', () => {
    const record = finished('completed');
    expect(jobCallbackBody(record, 'job.completed')).toEqual({
      type: 'job.completed',
      timestamp: '2026-01-02T03:04:05.000Z',
      data: jobView(record),
    });
  });
});
