import { context, propagation, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { BullMQOtel } from 'bullmq-otel';

/** The tracer every Recast span comes from. */
export const TRACER_NAME = 'recast';
const tracer = () => trace.getTracer(TRACER_NAME);
/** Set while this process traces: only then do queues carry trace context and jobs keep theirs. */
let tracing = false;

export function tracingActive(): boolean {
  return tracing;
}

/** The ids a span of a job carries (never a URL, a token or a key). */
export interface JobAttributes {
  jobId?: string;
  tenant?: string;
  batchId?: string | null;
  attempt?: number;
}

export function jobAttributes(job: JobAttributes): Record<string, string | number> {
  return {
    ...(job.jobId ? { 'recast.job_id': job.jobId } : {}),
    ...(job.tenant ? { 'recast.tenant': job.tenant } : {}),
    ...(job.batchId ? { 'recast.batch_id': job.batchId } : {}),
    ...(job.attempt !== undefined ? { 'recast.attempt': job.attempt } : {}),
  };
}

/** Whether the OTel environment asks for traces: an OTLP endpoint set, and the SDK not disabled. */
export function tracingRequested(env: Record<string, string | undefined>): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return false;
  if ((env.OTEL_TRACES_EXPORTER ?? '').toLowerCase() === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

export interface Tracing {
  shutdown(): Promise<void>;
}

/**
 * Traces for one process (called by the entry files, before anything sends a request): spans go
 * to the OTLP endpoint of the standard OTel variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, headers,
 * `OTEL_SERVICE_NAME`…, read by the exporter itself), outbound HTTP (undici and fetch) is traced
 * through its diagnostics channels. Off (and free: the OTel API is a no-op) unless asked for;
 * tests pass their own processor (an in-memory exporter).
 */
export function startTracing(options: {
  serviceName: string;
  env: Record<string, string | undefined>;
  processor?: SpanProcessor;
}): Tracing | undefined {
  if (!options.processor && !tracingRequested(options.env)) return undefined;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      'service.name': options.env.OTEL_SERVICE_NAME || options.serviceName,
    }),
    spanProcessors: [options.processor ?? new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register();
  tracing = true;
  const undici = new UndiciInstrumentation({
    // Outbound calls are traced inside a step of a job (or a request), not on their own.
    requireParentforSpans: true,
    // A query string may hold a secret (a callback URL's, a signed download's): spans keep none.
    startSpanHook: (request) => {
      const query = request.path.indexOf('?');
      return query === -1
        ? {}
        : { 'url.full': `${request.origin}${request.path.slice(0, query)}`, 'url.query': 'REDACTED' };
    },
  });
  undici.setTracerProvider(provider);
  undici.enable();
  return {
    async shutdown() {
      undici.disable();
      tracing = false;
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}

/** BullMQ's own spans (add, process) and their context carried in each job: the queue hop. */
export function queueTelemetry(): { telemetry: BullMQOtel } | Record<string, never> {
  return tracing ? { telemetry: new BullMQOtel(TRACER_NAME) } : {};
}

/** The current trace as a W3C `traceparent`, to keep with a job; undefined when nothing is traced. */
export function currentTraceparent(): string | undefined {
  if (!trace.getActiveSpan()?.isRecording()) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
}

/**
 * Run `fn` in a span of a job: a child of the job's kept trace (`traceparent`) when there is one,
 * else of whatever is active; so the dispatch, the webhook, the settle and the callback of a job
 * join the trace its submit started, whichever process and queue they run in.
 */
export async function inJobSpan<T>(
  name: string,
  job: JobAttributes & { traceparent?: string | undefined; kind?: SpanKind },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = job.traceparent
    ? propagation.extract(context.active(), { traceparent: job.traceparent })
    : context.active();
  // What this step runs inside, when that is another trace (the provider's webhook request, a
  // queue delivery): linked, so either trace leads to the other.
  const here = trace.getActiveSpan()?.spanContext();
  const links =
    here && job.traceparent && trace.getSpanContext(parent)?.traceId !== here.traceId
      ? [{ context: here }]
      : [];
  return tracer().startActiveSpan(
    name,
    { kind: job.kind ?? SpanKind.INTERNAL, attributes: jobAttributes(job), links },
    parent,
    async (span) => {
      try {
        return await fn(span);
      } catch (err) {
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

export { SpanKind };
