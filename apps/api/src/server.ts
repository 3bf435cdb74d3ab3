import { checkEvictionPolicy, createLogger, routeConsoleToLogger } from '@recast/core/infra';
import { createMetricsRegistry } from '@recast/core/metrics';
import { startTracing } from '@recast/core/telemetry';
import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';
import { startMetricsServer } from './metrics.js';

const config = loadConfig(process.env);
const logger = createLogger({ level: config.LOG_LEVEL, name: 'api' });
// OpenTelemetry traces, off unless the standard OTEL_* variables name an OTLP endpoint.
const tracing = startTracing({ serviceName: 'recast-api', env: process.env });
if (tracing) logger.info('traces exported over OTLP');
// Libraries that print (BullMQ during a Redis outage, Node's warnings) print JSON too.
routeConsoleToLogger(logger);
// Always collected: admin keys read them at /metrics; METRICS_PORT serves them apart as well.
const registry = createMetricsRegistry({ process: 'api' });
const app = await buildApp({ config, logger, registry });

const metrics =
  config.METRICS_PORT > 0
    ? await startMetricsServer({ registry, port: config.METRICS_PORT, host: config.METRICS_HOST, logger })
    : undefined;

closeWithGrace({ delay: 10_000, logger }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'closing after error');
  else logger.info({ signal }, 'shutting down');
  await app.close();
  await metrics?.close();
  await tracing?.shutdown();
});

await app.listen({ port: config.PORT, host: config.HOST });
await checkEvictionPolicy(app.recast.redis, logger);
