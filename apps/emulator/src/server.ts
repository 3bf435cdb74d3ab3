import closeWithGrace from 'close-with-grace';
import pino from 'pino';
import { buildEmulator } from './app.js';
import { loadConfig } from './config.js';

const config = loadConfig(process.env);
const logger = pino({ level: config.logLevel, name: 'emulator' });

const app = await buildEmulator({
  apiKey: config.apiKey,
  publicUrl: config.publicUrl,
  stepMs: config.stepMs,
  heartbeatMs: config.heartbeatMs,
  seed: config.seed,
  download: { timeoutMs: config.downloadTimeoutMs },
  rateLimits: config.rateLimits,
  faults: config.faults,
  logger,
});

closeWithGrace({ delay: 10_000 }, async ({ err, signal }) => {
  if (err) logger.error({ err }, 'closing after an error');
  else logger.info({ signal }, 'closing');
  await app.close();
});

const address = await app.listen({ port: config.port, host: config.host });
logger.info({ address, publicUrl: config.publicUrl ?? address }, 'inference emulator listening');
