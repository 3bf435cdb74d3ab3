import { createMetricsRegistry } from '@recast/core/metrics';
import { InferenceError } from '@recast/core/provider';
import { testLogger } from '@recast/core/testing';
import { RateLimitError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { dispatchOutcome, settleOutcome, startMetricsServer } from './index.js';

describe('step outcomes', () => {
  it('name what a dispatch step came to', () => {
    const outcomes = [
      { result: { taskId: 't' } },
      { result: { parked: 'global|daily' } },
      { result: { failed: 'BUDGET_EXCEEDED' } },
      { result: { failed: 'PROVIDER_INVALID_INPUT' } },
      { result: { skipped: 'submitted' } },
      { error: new RateLimitError() },
      { error: new InferenceError('PROVIDER_UNAVAILABLE', { detail: 'down', retryable: true }) },
      { error: new Error('redis down') },
    ].map(dispatchOutcome);
    expect(outcomes).toEqual([
      'submitted',
      'parked',
      'refused',
      'failed',
      'skipped',
      'deferred',
      'retry',
      'error',
    ]);
  });

  it('name what a settle or cancel step came to', () => {
    const outcomes = [
      { result: { state: 'completed', charged: true } },
      { result: { state: 'queued', retried: true } },
      { result: { state: 'running' } },
      { result: { skipped: 'missing' } },
      { result: { cancelled: 't' } },
      { result: { waiting: 'task id' } },
      { result: undefined },
      { error: new Error('x') },
    ].map(settleOutcome);
    expect(outcomes).toEqual([
      'completed',
      'retried',
      'running',
      'skipped',
      'cancel_sent',
      'waiting',
      'done',
      'error',
    ]);
  });
});

describe('worker metrics server', () => {
  it('serves GET and HEAD /metrics in the Prometheus format, 404 elsewhere, and closes', async () => {
    const registry = createMetricsRegistry({ process: 'worker' });
    const server = await startMetricsServer({ registry, port: 0, host: '127.0.0.1', logger: testLogger() });
    try {
      const res = await fetch(`${server.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(registry.contentType);
      expect(await res.text()).toContain('process_cpu_user_seconds_total{process="worker"}');
      const head = await fetch(`${server.url}/metrics`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect((await fetch(`${server.url}/`)).status).toBe(404);
      expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(404);
    } finally {
      await server.close();
    }
    await expect(fetch(`${server.url}/metrics`)).rejects.toThrow();
  });
});
