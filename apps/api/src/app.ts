import {
  createMetrics,
  DEFAULT_PRICE_TABLE,
  type Logger,
  parsePriceTable,
  type Registry,
} from '@recast/core';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { ApiConfig } from './config.js';
import { errorsPlugin } from './plugins/errors.js';
import { recastPlugin } from './plugins/recast.js';
import batchRoutes from './routes/batches/index.js';
import budgetRoutes from './routes/budgets/index.js';
import costRoutes from './routes/costs/index.js';
import healthRoutes from './routes/health/index.js';
import jobRoutes from './routes/jobs/index.js';
import tenantRoutes from './routes/tenants/index.js';
import webhookRoutes from './routes/webhooks/index.js';

export interface BuildAppOptions {
  config: ApiConfig;
  logger: Logger;
  /** Where this process's metrics go (served by server.ts on METRICS_PORT); none without it. */
  registry?: Registry;
}

/** The API without listening: routes, plugins and error handling. Tests use it with inject(). */
export async function buildApp({ config, logger, registry }: BuildAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: config.BODY_LIMIT_BYTES,
    // Requests are logged below by route pattern, so webhook tokens in URLs never reach a log.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: 'x-request-id',
    return503OnClosing: true,
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unknown',
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });
  await app.register(errorsPlugin);
  await app.register(recastPlugin, {
    redisUrl: config.REDIS_URL,
    prefix: config.REDIS_PREFIX,
    webhookSecret: config.WEBHOOK_SECRET,
    logger,
    prices: config.PRICE_TABLE ? parsePriceTable(config.PRICE_TABLE) : DEFAULT_PRICE_TABLE,
    fairShareBuffer: config.FAIR_SHARE_BUFFER,
    callbackSecrets: config.CALLBACK_SECRETS,
    urlPolicy: { allowHosts: config.SSRF_ALLOW_HOSTS },
    estimate: {
      fallbackSeconds: config.ESTIMATE_FALLBACK_SECONDS,
      concurrency: config.PROBE_CONCURRENCY,
      timeoutMs: config.PROBE_TIMEOUT_MS,
      maxMoovBytes: config.PROBE_MAX_HEADER_BYTES,
    },
    limits: { maxImages: config.MAX_IMAGES, maxMetadataBytes: config.MAX_METADATA_BYTES },
  });
  await app.register(healthRoutes);
  await app.register(jobRoutes);
  await app.register(budgetRoutes);
  await app.register(batchRoutes, {
    manifest: {
      maxBytes: config.MANIFEST_MAX_BYTES,
      maxRows: config.MANIFEST_MAX_ROWS,
      maxLineBytes: config.MANIFEST_MAX_LINE_BYTES,
      maxErrors: config.MANIFEST_MAX_ERRORS,
    },
  });
  await app.register(costRoutes);
  await app.register(tenantRoutes);
  await app.register(webhookRoutes, {
    bodyLimit: config.WEBHOOK_BODY_LIMIT_BYTES,
    ...(registry ? { webhooks: createMetrics(registry).webhooks } : {}),
  });
  return app;
}
