import { createOutputStore, DEFAULT_PRICE_TABLE, type Logger, parsePriceTable } from '@recast/core';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { ApiConfig } from './config.js';
import { errorsPlugin } from './plugins/errors.js';
import { recastPlugin } from './plugins/recast.js';
import batchRoutes from './routes/batches/index.js';
import budgetRoutes from './routes/budgets/index.js';
import costRoutes from './routes/costs/index.js';
import fileRoutes from './routes/files/index.js';
import healthRoutes from './routes/health/index.js';
import jobRoutes from './routes/jobs/index.js';
import tenantRoutes from './routes/tenants/index.js';
import webhookRoutes from './routes/webhooks/index.js';

export interface BuildAppOptions {
  config: ApiConfig;
  logger: Logger;
}

/** The API without listening: routes, plugins and error handling. Tests use it with inject(). */
export async function buildApp({ config, logger }: BuildAppOptions): Promise<FastifyInstance> {
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
    ...(config.INFERENCE_API_KEY
      ? {
          provider: {
            baseUrl: config.INFERENCE_API_URL,
            apiKey: config.INFERENCE_API_KEY,
            timeoutMs: config.INFERENCE_TIMEOUT_MS,
          },
        }
      : {}),
    files: {
      tmpDir: config.UPLOAD_TMP_DIR,
      maxVideoBytes: config.UPLOAD_MAX_VIDEO_BYTES,
      maxImageBytes: config.UPLOAD_MAX_IMAGE_BYTES,
      maxDataUriBytes: config.DATA_URI_MAX_BYTES,
      putTimeoutMs: config.UPLOAD_PUT_TIMEOUT_MS,
      reuseSeconds: config.UPLOAD_REUSE_SECONDS,
    },
    ...(config.OUTPUT_STORE ? { outputs: createOutputStore(config.OUTPUT_STORE) } : {}),
  });
  await app.register(healthRoutes);
  // A JSON job may carry its files as data: URIs (a video and MAX_IMAGES images, base64): room for them.
  const dataUriRoom = config.INFERENCE_API_KEY
    ? Math.ceil((config.DATA_URI_MAX_BYTES * 4) / 3 + 64) * (1 + config.MAX_IMAGES)
    : 0;
  await app.register(jobRoutes, {
    jsonBodyLimit: config.BODY_LIMIT_BYTES + dataUriRoom,
    fieldBytes: config.BODY_LIMIT_BYTES,
    maxImages: config.MAX_IMAGES,
  });
  await app.register(fileRoutes);
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
  await app.register(webhookRoutes, { bodyLimit: config.WEBHOOK_BODY_LIMIT_BYTES });
  return app;
}
