import { startTestReceiver } from '@recast/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { inJobSpan, startTracing, tracingActive } from './tracing.js';

const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
});

describe('startTracing', () => {
  it('does nothing without an OTLP endpoint', () => {
    expect(startTracing({ serviceName: 'recast-test', env: {} })).toBeUndefined();
    expect(tracingActive()).toBe(false);
  });

  it('exports the spans of a job over OTLP/HTTP to the endpoint of the standard variables', async () => {
    const collector = await startTestReceiver();
    try {
      // The exporter reads the standard variables itself, as it would in server.ts.
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT = collector.url('');
      const tracing = startTracing({ serviceName: 'recast-test', env: process.env });
      expect(tracing).toBeDefined();
      expect(tracingActive()).toBe(true);
      await inJobSpan(
        'recast.dispatch',
        { jobId: 'job_01JTRACED', tenant: 'acme', attempt: 1 },
        async () => {},
      );
      // Shutting down flushes what the batch processor holds.
      await tracing!.shutdown();
      expect(tracingActive()).toBe(false);
      const [sent] = collector.received('/v1/traces');
      expect(sent?.headers['content-type']).toContain('application/json');
      expect(sent?.body).toContain('recast.dispatch');
      expect(sent?.body).toContain('job_01JTRACED');
      expect(sent?.body).toContain('recast-test');
    } finally {
      await collector.close();
    }
  });
});
