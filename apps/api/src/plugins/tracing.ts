import { FastifyOtelInstrumentation } from '@fastify/otel';
import type { FastifyInstance } from 'fastify';

/**
 * A server span per request (`@fastify/otel`), continuing a caller's `traceparent`, named by
 * route; the job's own spans (core telemetry/) hang under it. Only the path is kept: a query may
 * hold a secret (the provider's webhooks carry their token there).
 */
export async function registerTracing(app: FastifyInstance): Promise<void> {
  const instrumentation = new FastifyOtelInstrumentation({
    ignorePaths: (route) => route.url === '/healthz' || route.url === '/readyz' || route.url === '/metrics',
    requestHook: (span, request) => {
      span.setAttribute('url.path', request.url.split('?')[0] ?? request.url);
      span.updateName(`${request.method} ${request.routeOptions.url ?? 'unknown'}`);
    },
  });
  await app.register(instrumentation.plugin());
}
