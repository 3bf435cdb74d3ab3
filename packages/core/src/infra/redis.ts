import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.js';

export type RedisRole =
  /** API processes and queue producers: fail fast instead of queueing commands while Redis is down. */
  | 'producer'
  /** BullMQ workers: block forever on reconnect, as BullMQ requires. */
  | 'worker';

export interface RedisFactoryOptions {
  url: string;
  role: RedisRole;
  logger: Logger;
  /** Connection name shown in `CLIENT LIST`, handy when several processes share one Redis. */
  name?: string;
}

/**
 * The one way Recast opens Redis, following the BullMQ production guide: workers use
 * `maxRetriesPerRequest: null` (a blocking command must survive a reconnect), producers use
 * `enableOfflineQueue: false` so an HTTP request gets a fast 503 rather than hanging, and an
 * error listener is always attached (an unhandled 'error' event would crash the process).
 */
export function createRedis(options: RedisFactoryOptions): Redis {
  const base: RedisOptions = {
    connectionName: options.name,
    // Reconnect forever with a capped backoff: Redis restarts must not kill a process.
    retryStrategy: (times) => Math.min(times * 200, 5_000),
    lazyConnect: false,
  };
  const roleOptions: RedisOptions =
    options.role === 'worker'
      ? { maxRetriesPerRequest: null, enableOfflineQueue: true }
      : {
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
          connectTimeout: 5_000,
          enableAutoPipelining: true,
        };
  const client = new Redis(options.url, { ...base, ...roleOptions });
  let lastLogged = 0;
  client.on('error', (err: Error) => {
    // A flapping connection emits an error per retry: log at most one a second.
    const now = Date.now();
    if (now - lastLogged < 1_000) return;
    lastLogged = now;
    options.logger.error(
      { err: { message: err.message, code: (err as NodeJS.ErrnoException).code }, role: options.role },
      'redis error',
    );
  });
  return client;
}

/** Wait until the client is connected (producers do not queue commands before that). */
export async function waitForRedis(client: Redis, timeoutMs = 10_000): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready after ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      client.off('ready', onReady);
    };
    client.on('ready', onReady);
  });
}

/**
 * Redis must not evict keys: an evicted BullMQ job or job record is a lost job. Managed Redis
 * often defaults to an LRU policy, so say so loudly at start. Returns the policy seen.
 */
export async function checkEvictionPolicy(client: Redis, logger: Logger): Promise<string | undefined> {
  try {
    const reply = (await client.config('GET', 'maxmemory-policy')) as string[];
    const policy = reply[1];
    if (policy !== 'noeviction') {
      logger.warn(
        { maxmemoryPolicy: policy },
        `REDIS EVICTION POLICY IS "${policy}", NOT "noeviction": Redis may silently drop queued jobs and job records. Set maxmemory-policy noeviction.`,
      );
    }
    return policy;
  } catch (err) {
    // Managed services sometimes forbid CONFIG; that is worth a warning, not a crash.
    logger.warn(
      { err: (err as Error).message },
      'could not read maxmemory-policy; make sure it is noeviction',
    );
    return undefined;
  }
}
