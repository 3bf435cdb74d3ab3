import type { Logger } from '@recast/core/infra';
import { type Registry, renderMetrics } from '@recast/core/metrics';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { z } from 'zod';

export interface MetricsRoutesOptions {
  registry: Registry;
}

/**
 * `GET /metrics` for Prometheus. A plain plugin (not wrapped in fastify-plugin) so it can be
 * mounted on the metrics port below, or later behind admin auth on the public port.
 */
export async function metricsRoutes(
  app: FastifyInstance,
  options: MetricsRoutesOptions & { access?: 'admin' },
) {
  app.get(
    '/metrics',
    {
      config: { access: options.access ?? 'public' },
      // Documented where the API's zod compilers are (the public port); the metrics port is bare.
      ...(options.access === 'admin'
        ? {
            schema: {
              tags: ['admin'],
              summary: 'Prometheus metrics (admin keys)',
              produces: ['text/plain'],
              response: { 200: z.string() },
            },
          }
        : {}),
    },
    async (_request, reply) => {
      const page = await renderMetrics(options.registry);
      return reply.type(page.contentType).send(page.body);
    },
  );
}

export interface MetricsServerOptions {
  registry: Registry;
  port: number;
  host: string;
  logger: Logger;
}

export interface MetricsServer {
  /** `http://host:port` it listens on (port 0 picks a free one). */
  url: string;
  close(): Promise<void>;
}

/**
 * The metrics port: its own small server, so scrapes never share the public port's limits and
 * the port can stay on a private interface (METRICS_HOST).
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const app = Fastify({
    loggerInstance: options.logger.child({ component: 'metrics' }) as FastifyBaseLogger,
    // A scrape every few seconds is not worth a log line.
    logController: new LogController({ disableRequestLogging: true }),
  });
  await app.register(metricsRoutes, { registry: options.registry });
  const url = await app.listen({ port: options.port, host: options.host });
  options.logger.info({ url: `${url}/metrics` }, 'serving metrics');
  return { url, close: () => app.close() };
}
