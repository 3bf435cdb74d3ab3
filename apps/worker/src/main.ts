import {
  checkEvictionPolicy,
  createLogger,
  createRedis,
  describeRedisTarget,
  redisTargetOf,
  routeConsoleToLogger,
} from '@recast/core/infra';
import { createMetrics, createMetricsRegistry, providerResponseObserver } from '@recast/core/metrics';
import { createInferenceClient } from '@recast/core/provider';
import { startTracing } from '@recast/core/telemetry';
import closeWithGrace from 'close-with-grace';
import { loadConfig } from './config.js';
import { startMetricsServer } from './metrics/index.js';
import { startWorkers } from './workers.js';

const config = loadConfig(process.env);
const logger = createLogger({ level: config.LOG_LEVEL, name: 'worker' });
// OpenTelemetry traces, off unless the standard OTEL_* variables name an OTLP endpoint.
const tracing = startTracing({ serviceName: 'recast-worker', env: process.env });
if (tracing) logger.info('traces exported over OTLP');
// Libraries that print (BullMQ during a Redis outage, Node's warnings) print JSON too.
routeConsoleToLogger(logger);
const registry = config.METRICS_PORT > 0 ? createMetricsRegistry({ process: 'worker' }) : undefined;

const target = redisTargetOf(config);
const probe = createRedis({ target, role: 'worker', logger, name: 'recast-worker-probe' });
await checkEvictionPolicy(probe, logger);
await probe.quit();

const client = createInferenceClient({
  baseUrl: config.INFERENCE_API_URL,
  apiKey: config.INFERENCE_API_KEY,
  app: config.INFERENCE_APP,
  statusNumbering: config.INFERENCE_STATUS_NUMBERING,
  requestTimeoutMs: config.INFERENCE_TIMEOUT_MS,
  connections: config.INFERENCE_CONNECTIONS,
  logger,
  ...(registry ? { onResponse: providerResponseObserver(createMetrics(registry)) } : {}),
});

const workers = await startWorkers({ config, logger, client, registry });
const metrics = registry
  ? await startMetricsServer({ registry, port: config.METRICS_PORT, host: config.METRICS_HOST, logger })
  : undefined;
logger.info(
  {
    provider: new URL(config.INFERENCE_API_URL).origin,
    prices: workers.engine.services.prices.version,
    redis: describeRedisTarget(target),
    waitReplicas: config.REDIS_WAIT_REPLICAS,
  },
  'worker started',
);

closeWithGrace({ delay: 30_000, logger }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'closing after error');
  else logger.info({ signal }, 'shutting down: finishing in-flight steps');
  await workers.close();
  await client.close();
  await metrics?.close();
  await tracing?.shutdown();
});
