import { checkEvictionPolicy, createLogger, routeConsoleToLogger } from '@recast/core/infra';
import { createMetricsRegistry } from '@recast/core/metrics';
import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';
import { startMetricsServer } from './metrics.js';

const config = loadConfig(process.env);
const logger = createLogger({ level: config.LOG_LEVEL, name: 'api' });
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
});

await app.listen({ port: config.PORT, host: config.HOST });
await checkEvictionPolicy(app.recast.redis, logger);
