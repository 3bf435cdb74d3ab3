import { afterEach, describe, expect, it } from 'vitest';
import { createInferenceClient, type InferenceClient } from '../provider/inference-client.js';
import { startCannedServer } from '../testing/canned-server.js';
import { createMetrics, providerResponseObserver, timeStep, webhookOutcome } from './metrics.js';
import { createMetricsRegistry } from './registry.js';
import { MetricsScrape } from './scrape.js';

const slimTask = { id: 'task_1', status: 2, status_text: 'queued', created_at: '2026-02-01T10:00:00Z' };

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const fresh = () => createMetricsRegistry({ process: 'test', defaultMetrics: false });

describe('provider responses', () => {
  it('counts every exchange by endpoint and status, answered or not', async () => {
    const registry = fresh();
    const metrics = createMetrics(registry);
    let limited = 1;
    const server = await startCannedServer((request) => {
      if (request.url.includes('/tasks/slow')) return { hang: true };
      if (request.method === 'POST' && limited-- > 0)
        return { status: 429, headers: { 'retry-after': '1' }, body: { error: 'slow down' } };
      return { body: slimTask };
    });
    const client: InferenceClient = createInferenceClient({
      baseUrl: server.url,
      apiKey: 'inf_test',
      requestTimeoutMs: 200,
      onResponse: providerResponseObserver(metrics),
    });
    closers.push(
      () => server.close(),
      () => client.close(),
    );
    await expect(client.run({ input: {} })).rejects.toMatchObject({ code: 'PROVIDER_RATE_LIMITED' });
    await client.run({ input: {} });
    await client.getStatus('task_1');
    await expect(client.getStatus('slow')).rejects.toMatchObject({ code: 'PROVIDER_TIMEOUT' });

    const page = new MetricsScrape(await registry.metrics());
    const responses = (endpoint: string, status: string) =>
      page.value('recast_provider_responses_total', { endpoint, status });
    expect(responses('run', '429')).toBe(1);
    expect(responses('run', '200')).toBe(1);
    expect(responses('get_status', '200')).toBe(1);
    expect(responses('get_status', 'timeout')).toBe(1);
    expect(page.value('recast_provider_request_duration_seconds_count', { endpoint: 'run' })).toBe(2);

    // Nothing listening: counted as a network failure.
    const closed = await startCannedServer(() => ({ body: slimTask }));
    await closed.close();
    const gone = createInferenceClient({
      baseUrl: closed.url,
      apiKey: 'inf_test',
      onResponse: providerResponseObserver(metrics),
    });
    closers.push(() => gone.close());
    await expect(gone.getTask('task_1')).rejects.toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
    const after = new MetricsScrape(await registry.metrics());
    expect(after.value('recast_provider_responses_total', { endpoint: 'get_task', status: 'network' })).toBe(
      1,
    );
  });

  it('keeps a call working when the observer throws', async () => {
    const server = await startCannedServer(() => ({ body: slimTask }));
    const client = createInferenceClient({
      baseUrl: server.url,
      apiKey: 'inf_test',
      onResponse: () => {
        throw new Error('observer bug');
      },
    });
    closers.push(
      () => server.close(),
      () => client.close(),
    );
    await expect(client.getStatus('task_1')).resolves.toMatchObject({ status: 'queued' });
  });
});

describe('metric objects', () => {
  it('are made once per registry and appear only once used', async () => {
    const registry = fresh();
    expect(createMetrics(registry)).toBe(createMetrics(registry));
    createMetrics(registry).webhooks.inc({ outcome: 'accepted' });
    const text = await registry.metrics();
    expect(text).toContain('recast_webhooks_total{outcome="accepted",process="test"} 1');
    expect(text).not.toContain('recast_dispatch_duration_seconds');
    // Another registry has metrics of its own.
    expect(await fresh().metrics()).toBe('\n');
  });

  it('timeStep observes a step under the outcome of its result or error, and passes both on', async () => {
    const registry = fresh();
    const { dispatchSeconds } = createMetrics(registry);
    const outcome = (ended: { result: string } | { error: unknown }) => ({
      outcome: 'error' in ended ? 'error' : ended.result,
    });
    const ok = timeStep(dispatchSeconds, outcome, async (x: string) => x);
    const bad = timeStep(dispatchSeconds, outcome, async () => {
      throw new Error('boom');
    });
    await expect(ok('submitted')).resolves.toBe('submitted');
    await ok('submitted');
    await expect(bad()).rejects.toThrow('boom');
    const page = new MetricsScrape(await registry.metrics());
    expect(page.value('recast_dispatch_duration_seconds_count', { outcome: 'submitted' })).toBe(2);
    expect(page.value('recast_dispatch_duration_seconds_count', { outcome: 'error' })).toBe(1);
  });

  it('names webhook outcomes after the receiver’s statuses', () => {
    expect([202, 400, 401, 404, 413, 503, 418].map(webhookOutcome)).toEqual([
      'accepted',
      'malformed',
      'bad_token',
      'unknown_job',
      'too_large',
      'error',
      'other',
    ]);
  });
});
