import { checkEvictionPolicy, createLogger } from '@recast/core';
import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';

const config = loadConfig(process.env);
const logger = createLogger({ level: config.LOG_LEVEL, name: 'api' });
const app = await buildApp({ config, logger });

closeWithGrace({ delay: 10_000, logger }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'closing after error');
  else logger.info({ signal }, 'shutting down');
  await app.close();
});

await app.listen({ port: config.PORT, host: config.HOST });
await checkEvictionPolicy(app.recast.redis, logger);
