import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.js';

export type RedisRole =
  /** API processes and queue producers: fail fast instead of queueing commands while Redis is down. */
  | 'producer'
  /** BullMQ workers: block forever on reconnect, as BullMQ requires. */
  | 'worker';

/**
 * Where Redis is: one endpoint (`url`: a managed Redis, a single server), or a primary found
 * through Redis Sentinel. With sentinels, `url` gives only the data nodes' credentials, database
 * and scheme (`rediss:` is TLS to the data nodes and to the sentinels); its host and port are not
 * used, the sentinels name the primary.
 */
export interface RedisTarget {
  url: string;
  sentinels?: readonly { host: string; port: number }[];
  /** The primary's name in `sentinel monitor <name> ...`. */
  sentinelName?: string;
  sentinelPassword?: string | undefined;
}

/** The target from the shared settings (REDIS_URL, REDIS_SENTINELS, REDIS_SENTINEL_*). */
export function redisTargetOf(config: {
  REDIS_URL: string;
  REDIS_SENTINELS: readonly { host: string; port: number }[];
  REDIS_SENTINEL_NAME: string;
  REDIS_SENTINEL_PASSWORD?: string | undefined;
}): RedisTarget {
  if (config.REDIS_SENTINELS.length === 0) return { url: config.REDIS_URL };
  return {
    url: config.REDIS_URL,
    sentinels: config.REDIS_SENTINELS,
    sentinelName: config.REDIS_SENTINEL_NAME,
    sentinelPassword: config.REDIS_SENTINEL_PASSWORD,
  };
}

/** A short description of the target for logs: never a password. */
export function describeRedisTarget(target: RedisTarget | string): string {
  const t = typeof target === 'string' ? { url: target } : target;
  if (t.sentinels?.length) {
    return `sentinel ${t.sentinelName ?? 'recast'} via ${t.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
  }
  const u = new URL(t.url);
  return `${u.protocol}//${u.host}`;
}

/**
 * Connection options for a target. One endpoint: the URL as ioredis reads it. Sentinel: ioredis
 * asks the sentinels for the primary on every (re)connect, so after a failover a reconnect lands
 * on the promoted replica by itself (and see `reconnectOnError` in createRedis).
 *
 * Not `failoverDetector`: in ioredis 5 its `+switch-master` handler, when it fires while the
 * client is already reconnecting (the primary died, which is when a failover happens), aborts
 * that reconnect and leaves the client ended for good ("Connection is closed." on every command,
 * no retry): a process that never comes back is worse than one that notices a demotion on its
 * next write. The failover chaos scenario caught it.
 */
export function redisOptionsOf(target: RedisTarget | string): RedisOptions {
  const t = typeof target === 'string' ? { url: target } : target;
  if (!t.sentinels?.length) return {};
  const u = new URL(t.url);
  const db = Number(u.pathname.replace(/^\//, '') || '0');
  const tls = u.protocol === 'rediss:' ? {} : undefined;
  return {
    sentinels: t.sentinels.map((s) => ({ host: s.host, port: s.port })),
    name: t.sentinelName ?? 'recast',
    role: 'master',
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(t.sentinelPassword ? { sentinelPassword: t.sentinelPassword } : {}),
    ...(Number.isInteger(db) && db > 0 ? { db } : {}),
    ...(tls ? { tls, enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
    // While every sentinel is unreachable, keep asking (capped), as for a plain endpoint.
    sentinelRetryStrategy: (times: number) => Math.min(times * 200, 5_000),
  };
}

export interface RedisFactoryOptions {
  /** A URL (one endpoint) or a target (see RedisTarget; `redisTargetOf(config)` in apps). */
  target: RedisTarget | string;
  role: RedisRole;
  logger: Logger;
  /** Connection name shown in `CLIENT LIST`, handy when several processes share one Redis. */
  name?: string;
}

/**
 * The one way Recast opens Redis, following the BullMQ production guide: workers use
 * `maxRetriesPerRequest: null` (a blocking command must survive a reconnect), producers use
 * `enableOfflineQueue: false` so an HTTP request gets a fast 503 rather than hanging, and an
 * error listener is always attached (an unhandled 'error' event would crash the process). The
 * roles are the same through Sentinel: during a failover producers answer 503, workers wait for
 * the new primary.
 */
export function createRedis(options: RedisFactoryOptions): Redis {
  const base: RedisOptions = {
    connectionName: options.name,
    // Reconnect forever with a capped backoff: Redis restarts must not kill a process.
    retryStrategy: (times) => Math.min(times * 200, 5_000),
    lazyConnect: false,
    // READONLY: a write reached a node that is a replica now (a primary demoted without dying; a
    // managed Redis whose endpoint name moved to the new primary while this connection stayed on
    // the old one); MASTERDOWN: a replica that is (re)syncing and serves no stale data. Either way
    // this is not the primary: reconnect (through the sentinels, or the endpoint's name resolved
    // again) and send the command there.
    reconnectOnError: (err: Error) => (/^(READONLY|MASTERDOWN)/.test(err.message) ? 2 : false),
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
  const sentinel = redisOptionsOf(options.target);
  const all = { ...base, ...roleOptions, ...sentinel };
  const client =
    typeof options.target === 'string' || !options.target.sentinels?.length
      ? new Redis(typeof options.target === 'string' ? options.target : options.target.url, all)
      : new Redis(all);
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
 * Call `back` each time the client is ready again after it lost its connection (not on the first
 * connect): what happened while Redis could not be reached (webhooks refused) needs looking at.
 * Returns a function that stops watching.
 */
export function onReconnect(client: Redis, back: () => void): () => void {
  let wasReady = client.status === 'ready';
  let lost = false;
  const onReady = () => {
    if (wasReady && lost) back();
    wasReady = true;
    lost = false;
  };
  const onClose = () => {
    if (wasReady) lost = true;
  };
  client.on('ready', onReady);
  client.on('close', onClose);
  return () => {
    client.off('ready', onReady);
    client.off('close', onClose);
  };
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
