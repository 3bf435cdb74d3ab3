import { type MetricsScrape, scrapeMetrics, waitFor } from '@recast/core/testing';
import { describe, expect, it } from 'vitest';
import { type System, systemPerTest } from './system.js';

const { start } = systemPerTest();

/** The emulator's routes by the client's endpoint names. */
const ROUTES = { run: '/apps/run', get_task: '/tasks/:id' } as const;

async function scrape(s: System) {
  const urls = s.metrics!;
  const [api, worker] = await Promise.all([scrapeMetrics(urls.api), scrapeMetrics(urls.worker)]);
  return { api, worker };
}

/** How many requests the emulator answered on a route with a status: the oracle for our counter. */
async function providerSaw(s: System, route: string, status: number) {
  const { requests } = await s.emulatorState();
  return requests.filter((r) => r.route === route && r.status === status).length;
}

const count = (m: MetricsScrape, name: string, labels: Record<string, string> = {}) =>
  m.value(`${name}_count`, labels);

describe('metrics (scraped over HTTP from the metrics ports while real jobs run)', () => {
  it('move with the jobs: steps, provider answers, webhooks, spend, in-flight, queues', async () => {
    const s = await start({ metrics: true });
    const before = await scrape(s);
    // Depth gauges exist before anything ran, at 0.
    for (const queue of ['dispatch', 'settle'])
      expect(before.worker.find('recast_queue_jobs', { queue, state: 'waiting' })).toEqual([
        expect.objectContaining({ value: 0, labels: expect.objectContaining({ process: 'worker' }) }),
      ]);
    expect(before.worker.value('recast_provider_in_flight')).toBe(0);
    expect(before.api.value('recast_webhooks_total')).toBe(0);
    expect(before.api.has('recast_queue_jobs')).toBe(false);

    const images = [s.fixture('person-a.png')];
    const jobs = await Promise.all([
      s.submit({ video: s.fixture('clip-2s-faststart.mp4'), images }),
      s.submit({ video: s.fixture('clip-2s-faststart.mp4'), images, seed: 2 }),
      s.submit({ video: s.fixture('clip-5s-moov-at-end.mp4'), images, resolution: '1080p' }),
    ]);
    const done = await Promise.all(jobs.map((j) => s.waitTerminal(j.id)));
    expect(done.map((j) => j.state)).toEqual(['completed', 'completed', 'completed']);
    await s.drained();
    // In-flight slots are released after the terminal move; wait for the last one.
    const after = await waitFor(
      async () => {
        const m = await scrape(s);
        return m.worker.value('recast_provider_in_flight') === 0 &&
          m.api.value('recast_webhooks_total', { outcome: 'accepted' }) === 3
          ? m
          : undefined;
      },
      { what: 'in-flight back to 0 and 3 webhooks counted' },
    );
    const { worker, api } = after;

    // One submitting dispatch step and one completing settle step per job.
    expect(count(worker, 'recast_dispatch_duration_seconds', { outcome: 'submitted' })).toBe(3);
    expect(count(worker, 'recast_settle_duration_seconds', { step: 'settle', outcome: 'completed' })).toBe(3);
    expect(count(worker, 'recast_queue_to_submit_seconds')).toBe(3);
    expect(worker.value('recast_queue_to_submit_seconds_sum')).toBeGreaterThan(0);

    // Provider answers by endpoint and status, as many as the provider itself saw.
    expect(worker.value('recast_provider_responses_total', { endpoint: 'run', status: '200' })).toBe(3);
    for (const [endpoint, route] of Object.entries(ROUTES))
      expect(worker.value('recast_provider_responses_total', { endpoint, status: '200' })).toBe(
        await providerSaw(s, route, 200),
      );
    expect(count(worker, 'recast_provider_request_duration_seconds', { endpoint: 'run' })).toBe(3);

    const state = await s.emulatorState();
    expect(api.value('recast_webhooks_total', { outcome: 'accepted' })).toBe(state.webhooks.sent);
    expect(api.value('recast_webhooks_total')).toBe(3);

    // Spend and billed seconds by resolution: exactly the provider's bill.
    for (const resolution of ['720p', '1080p'] as const) {
      const billed = state.bill.by_resolution[resolution];
      expect(worker.value('recast_spend_micro_usd_total', { resolution })).toBe(billed.micro_usd);
      expect(worker.value('recast_billed_seconds_total', { resolution })).toBe(billed.seconds);
      expect(worker.value('recast_billed_jobs_total', { resolution })).toBe(billed.tasks);
    }
    expect(worker.value('recast_spend_micro_usd_total')).toBe(state.bill.total_micro_usd);
    expect(state.bill.total_micro_usd).toBe(2 * 60_000 + 300_000);

    // The queues are empty of pending work and the finished steps are counted.
    expect(worker.value('recast_queue_jobs', { queue: 'dispatch', state: 'waiting' })).toBe(0);
    expect(worker.value('recast_queue_jobs', { queue: 'dispatch', state: 'completed' })).toBe(3);
    expect(worker.value('recast_queue_jobs', { queue: 'settle', state: 'active' })).toBe(0);
    expect(worker.value('recast_metrics_collect_errors_total')).toBe(0);
  });

  it('counts a 429 from the provider under status 429, as often as the provider sent one', async () => {
    const s = await start({
      metrics: true,
      emulator: { faults: { rateLimitedRate: 1 } },
      worker: { RATE_LIMIT_FALLBACK_MS: '100' },
    });
    const images = [s.fixture('person-a.png')];
    const jobs = await Promise.all([
      s.submit({ video: s.fixture('clip-2s-faststart.mp4'), images, duration_seconds: 2 }),
      s.submit({ video: s.fixture('clip-2s-faststart.mp4'), images, duration_seconds: 2, seed: 2 }),
    ]);
    await waitFor(async () => (await providerSaw(s, ROUTES.run, 429)) > 0, { what: 'a 429 on /apps/run' });
    await s.setFaults({ rateLimitedRate: 0 });
    const done = await Promise.all(jobs.map((j) => s.waitTerminal(j.id, 30_000)));
    expect(done.map((j) => j.state)).toEqual(['completed', 'completed']);
    await s.drained();

    const { worker } = await scrape(s);
    const refused = await providerSaw(s, ROUTES.run, 429);
    expect(refused).toBeGreaterThan(0);
    expect(worker.value('recast_provider_responses_total', { endpoint: 'run', status: '429' })).toBe(refused);
    expect(worker.value('recast_provider_responses_total', { endpoint: 'run', status: '200' })).toBe(2);
    // Each 429 put its job back in line without using an attempt: a deferred dispatch step.
    expect(count(worker, 'recast_dispatch_duration_seconds', { outcome: 'deferred' })).toBeGreaterThanOrEqual(
      refused,
    );
    expect(count(worker, 'recast_dispatch_duration_seconds', { outcome: 'submitted' })).toBe(2);
  });
});
