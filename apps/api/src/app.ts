import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import { AppError } from '@recast/core/errors';
import type { Logger } from '@recast/core/infra';
import { createMetrics, type Registry } from '@recast/core/metrics';
import type { LookupFn } from '@recast/core/net';
import { tracingActive } from '@recast/core/telemetry';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { clientErrorHandler } from './client-errors.js';
import type { ApiConfig } from './config.js';
import { metricsRoutes } from './metrics.js';
import { authPlugin } from './plugins/auth.js';
import { errorsPlugin } from './plugins/errors.js';
import { useJsonBodyRule } from './plugins/json-body.js';
import { openApiPlugin } from './plugins/openapi.js';
import { recastPlugin } from './plugins/recast.js';
import { securityHeadersPlugin } from './plugins/security-headers.js';
import { registerTracing } from './plugins/tracing.js';
import adminRoutes from './routes/admin/index.js';
import batchRoutes from './routes/batches/index.js';
import budgetRoutes from './routes/budgets/index.js';
import costRoutes from './routes/costs/index.js';
import dashboardRoutes from './routes/dashboard/index.js';
import eventRoutes from './routes/events/index.js';
import fileRoutes from './routes/files/index.js';
import healthRoutes from './routes/health/index.js';
import jobRoutes from './routes/jobs/index.js';
import limitsRoutes from './routes/limits/index.js';
import meRoutes from './routes/me/index.js';
import queueBoardRoutes from './routes/queues/index.js';
import statsRoutes from './routes/stats/index.js';
import tenantRoutes from './routes/tenants/index.js';
import webhookRoutes from './routes/webhooks/index.js';

export interface BuildAppOptions {
  config: ApiConfig;
  logger: Logger;
  /** Where this process's metrics go (served by server.ts on METRICS_PORT); none without it. */
  registry?: Registry;
  /** The resolver of every SSRF check (tests answer for made-up hosts); default: the system's, cached. */
  lookup?: LookupFn;
}

function trustHops(hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops;
}

/** The API without listening: routes, plugins and error handling. Tests use it with inject(). */
export async function buildApp({
  config,
  logger,
  registry,
  lookup,
}: BuildAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: config.BODY_LIMIT_BYTES,
    // Requests are logged below by route pattern, so webhook tokens in URLs never reach a log.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: 'x-request-id',
    return503OnClosing: true,
    clientErrorHandler,
    // Per-address limits count request.ip: the socket's, or the client's behind TRUST_PROXY hops.
    // (A hop count as Fastify itself reads one; its types take only the function form.)
    trustProxy: typeof config.TRUST_PROXY === 'number' ? trustHops(config.TRUST_PROXY) : config.TRUST_PROXY,
  });
  useJsonBodyRule(app);
  // Traces, when this process traces (server.ts starts them from the OTel variables).
  if (tracingActive()) await registerTracing(app);
  // Closing waits for requests in flight, but Node closes only the keep-alive connections idle at
  // that instant: one whose request ends a moment later would hold the close for the whole
  // keep-alive timeout (72 s). Close those too, as they go idle.
  app.addHook('preClose', async () => {
    const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
    sweep.unref();
    app.server.once('close', () => clearInterval(sweep));
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unknown',
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
        ...(request.principal ? { keyId: request.principal.keyId, tenant: request.principal.tenant } : {}),
      },
      'request',
    );
  });
  await app.register(errorsPlugin);
  await app.register(openApiPlugin);
  // Security headers on every answer; the API serves JSON, and its own pages load only its own
  // scripts and styles.
  await app.register(securityHeadersPlugin, {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        // The dashboard plays a job's kept output from a blob it read with the key.
        mediaSrc: ["'self'", 'blob:'],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
  });
  // Load shedding: while the event loop lags, answer 503 at once rather than queue up work.
  if (config.MAX_EVENT_LOOP_DELAY_MS > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: config.MAX_EVENT_LOOP_DELAY_MS,
      retryAfter: 5,
      pressureHandler: (_request, reply, type, value) => {
        void reply
          .status(503)
          .header('retry-after', '5')
          .send({
            error: new AppError('OVERLOADED', `the server is overloaded (${type} ${value}); retry shortly`, {
              statusCode: 503,
              retryable: true,
            }).toJSON(),
          });
      },
    });
  }
  await app.register(recastPlugin, { config, logger, ...(lookup ? { lookup } : {}) });
  // Request rates, counted in Redis so every API process shares them: per key on the public API
  // (after authentication, so the key and not the address is counted), and per address for
  // requests refused as unauthenticated (before authentication: a flood of made-up keys must not
  // cost a Redis read each).
  const isPublic = (request: FastifyRequest) => (request.routeOptions.config.access ?? 'read') === 'public';
  if (config.RATE_LIMIT_MAX > 0 || config.AUTH_FAILURES_MAX > 0) {
    await app.register(rateLimit, {
      global: false,
      max: config.RATE_LIMIT_MAX,
      timeWindow: config.RATE_LIMIT_WINDOW_MS,
      redis: app.recast.redis,
      nameSpace: `${config.REDIS_PREFIX}:ratelimit:`,
      // Redis trouble is answered by the routes themselves (503); it must not also block reads.
      skipOnError: true,
      keyGenerator: (request) => request.principal?.keyId ?? request.ip,
      allowList: isPublic,
      errorResponseBuilder: (_request, context) =>
        new AppError('RATE_LIMITED', `too many requests: at most ${context.max} per ${context.after}`, {
          statusCode: 429,
          retryable: true,
        }),
    });
  }
  if (config.AUTH_FAILURES_MAX > 0) {
    // Refused requests are counted in Redis (shared by every API process); an address past the
    // limit is then refused from memory until the window ends, so requests that pass cost nothing.
    const failures = app.createRateLimit({
      max: config.AUTH_FAILURES_MAX,
      keyGenerator: (request) => `auth-failures:${request.ip}`,
    });
    const blocked = new Map<string, number>();
    app.addHook('onRequest', async (request) => {
      if (blocked.size === 0) return;
      const until = blocked.get(request.ip);
      if (until === undefined) return;
      if (until <= Date.now() || isPublic(request)) {
        if (until <= Date.now()) blocked.delete(request.ip);
        return;
      }
      throw new AppError(
        'RATE_LIMITED',
        `too many unauthenticated requests from this address: at most ${config.AUTH_FAILURES_MAX} per ${config.RATE_LIMIT_WINDOW_MS} ms`,
        { statusCode: 429, retryable: true },
      );
    });
    // Counted before the refusal is sent, so the client's next request already meets the count.
    app.addHook('onSend', async (request, reply) => {
      if (reply.statusCode !== 401) return;
      const seen = await failures(request).catch(() => undefined);
      if (seen && !seen.isAllowed && seen.remaining === 0) {
        // Bounded: a flood from many addresses must not grow this without end.
        if (blocked.size >= 10_000) blocked.clear();
        blocked.set(request.ip, Date.now() + seen.ttl);
      }
    });
  }
  await app.register(authPlugin, {
    disabled: config.AUTH_DISABLED,
    bootstrapKey: config.ADMIN_API_KEY,
    logger,
    cacheMs: config.API_KEY_CACHE_MS,
  });
  if (config.RATE_LIMIT_MAX > 0) app.addHook('preHandler', app.rateLimit());
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
  await app.register(statsRoutes, { cacheMs: config.STATS_CACHE_MS });
  await app.register(eventRoutes, {
    pollMs: config.EVENTS_POLL_MS,
    heartbeatMs: config.EVENTS_HEARTBEAT_MS,
  });
  await app.register(budgetRoutes);
  await app.register(batchRoutes, {
    manifest: {
      maxBytes: config.MANIFEST_MAX_BYTES,
      maxRows: config.MANIFEST_MAX_ROWS,
      maxLineBytes: config.MANIFEST_MAX_LINE_BYTES,
      maxErrors: config.MANIFEST_MAX_ERRORS,
    },
  });
  await app.register(limitsRoutes, {
    limits: {
      manifest: {
        max_bytes: config.MANIFEST_MAX_BYTES,
        max_rows: config.MANIFEST_MAX_ROWS,
        max_line_bytes: config.MANIFEST_MAX_LINE_BYTES,
      },
      max_images: config.MAX_IMAGES,
      max_metadata_bytes: config.MAX_METADATA_BYTES,
    },
  });
  await app.register(costRoutes);
  await app.register(dashboardRoutes);
  await app.register(tenantRoutes);
  await app.register(meRoutes);
  await app.register(adminRoutes);
  await app.register(queueBoardRoutes);
  // The same metrics as the metrics port, on the public port for admin keys only.
  if (registry) await app.register(metricsRoutes, { registry, access: 'admin' });
  await app.register(webhookRoutes, {
    bodyLimit: config.WEBHOOK_BODY_LIMIT_BYTES,
    ...(registry ? { webhooks: createMetrics(registry).webhooks } : {}),
  });
  return app;
}
