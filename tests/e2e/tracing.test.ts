import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { startTracing, type Tracing, tracingRequested } from '@recast/core/telemetry';
import { startTestReceiver, waitFor } from '@recast/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPerTest } from './system.js';

// The whole system in this process, traced into memory: the API, the worker and the emulator's
// calls are real HTTP on loopback, the queues real BullMQ on the run's Redis.
const exporter = new InMemorySpanExporter();
let tracing: Tracing | undefined;
beforeAll(() => {
  tracing = startTracing({
    serviceName: 'recast-test',
    env: {},
    processor: new SimpleSpanProcessor(exporter),
  });
});
afterAll(async () => {
  await tracing?.shutdown();
});

const { start, onCleanup } = systemPerTest();
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

describe('traces', () => {
  it('are off unless the OTel variables name an endpoint', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(
      true,
    );
    expect(
      tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }),
    ).toBe(false);
    expect(
      tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }),
    ).toBe(false);
  });

  it('one job gives one connected trace: submit, queue, dispatch, provider call, webhook, settle, callback', async () => {
    const receiver = await startTestReceiver();
    onCleanup(() => receiver.close());
    const s = await start({
      emulator: { stepMs: 5 },
      worker: { PROVIDER_SUBMITS_PER_WINDOW: '0', CALLBACK_SECRETS: SECRET, SSRF_ALLOW_HOSTS: receiver.host },
      api: { CALLBACK_SECRETS: SECRET },
      allowHosts: [receiver.host],
    });
    const job = await s.submit(
      {
        video: s.fixture('clip-2s-faststart.mp4'),
        images: [s.fixture('person-a.png')],
        callback_url: receiver.url('/hooks/done?secret-looking=1'),
      },
      { 'x-tenant': 'traced' },
    );
    await s.waitTerminal(job.id, 20_000, 'traced');
    // Every step has ended (and so been exported) once the callback's span has.
    const ofJob = () =>
      exporter.getFinishedSpans().filter((span) => span.attributes['recast.job_id'] === job.id);
    await waitFor(() => ofJob().find((span) => span.name === 'recast.callback'), {
      what: 'the callback span',
    });

    const submit = ofJob().find((span) => span.name === 'recast.submit');
    expect(submit).toBeDefined();
    const traceId = submit!.spanContext().traceId;
    const trace = exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
    const names = trace.map((span) => span.name);
    // (Printed when an expectation below fails.)
    const shape = trace.map((span) => `${span.name} <- ${parentOf(span) ?? '-'}`).join('\n');

    // Recast's own steps, each with the job's ids, all in the one trace.
    for (const step of [
      'recast.submit',
      'recast.dispatch',
      'recast.webhook',
      'recast.settle',
      'recast.callback',
    ]) {
      const spans = ofJob().filter((span) => span.name === step);
      expect(spans.length, step).toBeGreaterThan(0);
      for (const span of spans) {
        expect(span.spanContext().traceId, step).toBe(traceId);
        expect(span.attributes['recast.tenant'], step).toBe('traced');
      }
    }
    // The HTTP hops: the submit request and the provider's webhook (server spans named by route),
    // the provider calls and the callback (outbound, through undici), and BullMQ's queue hop.
    expect(names).toContain('POST /v1/jobs');
    // The provider's webhook request starts no trace of ours (a provider sends no traceparent):
    // its server span is linked from the job's webhook step, which is in the job's trace.
    const webhook = ofJob().find((span) => span.name === 'recast.webhook')!;
    const linked = webhook.links.map((link) => link.context.spanId);
    const all = exporter.getFinishedSpans();
    const handlers = all.filter((span) => linked.includes(span.spanContext().spanId));
    expect(handlers).toHaveLength(1);
    // (The route's handler span, under the request's server span.)
    const request = all.find((span) => span.spanContext().spanId === parentOf(handlers[0]!));
    expect(request?.name).toBe('POST /webhooks/inference/:jobId');
    expect(request?.spanContext().traceId).not.toBe(traceId);
    const byId = new Map(trace.map((span) => [span.spanContext().spanId, span]));
    const dispatch = ofJob().find((span) => span.name === 'recast.dispatch')!;
    const providerCalls = trace.filter(
      (span) =>
        parentOf(span) === dispatch.spanContext().spanId && span.attributes['http.request.method'] === 'POST',
    );
    expect(providerCalls.length).toBeGreaterThan(0);
    const callback = ofJob().find((span) => span.name === 'recast.callback')!;
    expect(trace.some((span) => parentOf(span) === callback.spanContext().spanId)).toBe(true);
    // The queue hops (BullMQ's telemetry): the webhook's settle is added under the webhook step
    // and processed in the same trace. The dispatch is lined up by the fair-share scheduler: by
    // the submit's own request when it finds room at once (then added and processed in this
    // trace), else by a worker's pass (then processed in a trace of its own, which the dispatch
    // step links to).
    const settleAdd = trace.find((span) => span.name === 'add settle.job.settle');
    expect(settleAdd && parentOf(settleAdd)).toBe(webhook.spanContext().spanId);
    expect(names).toContain('process settle');
    const dispatchLinks = dispatch.links.map((link) => link.context.spanId);
    const delivered = all.filter(
      (span) =>
        span.name === 'process dispatch' &&
        (span.spanContext().traceId === traceId || dispatchLinks.includes(span.spanContext().spanId)),
    );
    expect(delivered).toHaveLength(1);

    // Connected: every span's parent is in the trace, and there is one root.
    const roots = trace.filter((span) => parentOf(span) === undefined || !byId.has(parentOf(span)!));
    expect(
      roots.map((span) => span.name),
      shape,
    ).toHaveLength(1);

    // No secrets: no attribute holds a query string, a token or a key.
    for (const span of trace) {
      for (const [key, value] of Object.entries(span.attributes)) {
        expect(String(value), `${span.name} ${key}`).not.toMatch(/token=|secret-looking|Bearer|inf_e2e_key/);
      }
    }
  });
});
