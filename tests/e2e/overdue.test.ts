import { describe, expect, it } from 'vitest';
import { systemPerTest } from './system.js';

const { start } = systemPerTest();

describe('lost webhooks found by when they were due', () => {
  it('polls a quiet task once it is overdue against its expected duration, not after RECONCILE_AFTER_MS', async () => {
    const settings = {
      // The production ceiling: five minutes. A flat delay would find these jobs after it.
      RECONCILE_AFTER_MS: '300000',
      RECONCILE_MIN_AFTER_MS: '1000',
      RECONCILE_INTERVAL_MS: '200',
      // Until tasks have completed: 0.5 s per output second, so a 2 s clip is expected in 1 s.
      ETA_DEFAULT_MS_PER_OUTPUT_SECOND: '500',
      PROVIDER_SUBMITS_PER_WINDOW: '0',
    };
    // Every webhook is lost: only the reconciler's polls can find the tasks' ends.
    const s = await start({
      worker: settings,
      api: settings,
      emulator: { stepMs: 100, faults: { webhookDropRate: 1 } },
    });
    const body = {
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
      duration_seconds: 2,
    };

    const first = await Promise.all(Array.from({ length: 5 }, () => s.submit(body)));
    for (const job of first) {
      const done = await s.waitTerminal(job.id, 30_000);
      expect(done.state).toBe('completed');
      // Found within seconds of its end (expected 1 s, overdue at 1.5 s, then every second or more).
      expect(Date.parse(done.finished_at!) - Date.parse(done.submitted_at!)).toBeLessThan(10_000);
    }
    // The processing time is learnt from them (on the provider's clock, so polls found late do
    // not make the next ones be looked at later still): the next jobs are due by it.
    const second = await Promise.all(Array.from({ length: 5 }, () => s.submit(body)));
    for (const job of second) expect((await s.waitTerminal(job.id, 30_000)).state).toBe('completed');

    const state = await s.emulatorState();
    expect(state.webhooks.sent).toBe(0);
    expect(state.bill.total_micro_usd).toBe(10 * 60_000);
    expect((await s.costs(['resolution'])).total.micro_usd).toBe(state.bill.total_micro_usd);
    // No more provider load than that: a handful of polls per job, not one per reconcile pass.
    const polls = state.requests.filter((r) => r.route === '/tasks/:id/status');
    expect(polls.length).toBeGreaterThanOrEqual(10);
    expect(polls.length).toBeLessThanOrEqual(10 * 3);
  }, 90_000);

  it('reads a task in full only where a poll saw it move its job, and re-checks only an expected end', async () => {
    // Webhooks lost, polls every 300 ms (a flat ceiling under the floor), re-checks as often as
    // every 100 ms: were every poll that saw a status on the way followed by a full read and a
    // chain of re-checks, each job would cost a dozen reads or more.
    const settings = {
      RECONCILE_INTERVAL_MS: '100',
      RECONCILE_AFTER_MS: '300',
      SETTLE_RECHECK_MS: '100',
      PROVIDER_SUBMITS_PER_WINDOW: '0',
    };
    const s = await start({
      worker: settings,
      api: settings,
      emulator: { stepMs: 200, faults: { webhookDropRate: 1 } },
    });
    const body = {
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
      duration_seconds: 2,
    };
    const jobs = await Promise.all(Array.from({ length: 5 }, () => s.submit(body)));
    for (const job of jobs) expect((await s.waitTerminal(job.id, 30_000)).state).toBe('completed');
    // A little longer: a re-check chain would go on reading after the end.
    await new Promise((r) => setTimeout(r, 1_000));
    const state = await s.emulatorState();
    const polls = state.requests.filter((r) => r.route === '/tasks/:id/status');
    const reads = state.requests.filter((r) => r.route === '/tasks/:id');
    // Each task moves through six statuses over ~1.2 s: a few polls each; full reads for the move
    // to running and for the end.
    expect(polls.length).toBeGreaterThanOrEqual(5 * 2);
    expect(reads.length).toBeLessThanOrEqual(5 * 3);
    expect(state.bill.total_micro_usd).toBe(5 * 60_000);
  }, 60_000);
});
