import {
  createKeys,
  createQueues,
  createRedis,
  DEFAULT_JOB_SCHEMA_LIMITS,
  type JobSchemaLimits,
  JobStore,
  type Keys,
  type Logger,
  type Queues,
  waitForRedis,
} from '@recast/core';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';

export interface RecastDeps {
  redis: Redis;
  keys: Keys;
  store: JobStore;
  queues: Queues;
  limits: JobSchemaLimits;
  webhookSecret: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    recast: RecastDeps;
  }
}

export interface RecastPluginOptions {
  redisUrl: string;
  prefix: string;
  webhookSecret: string;
  logger: Logger;
  limits?: Partial<JobSchemaLimits>;
}

/** Redis, the job store and the producer queues, shared by every route and closed with the app. */
export const recastPlugin = fp(async (app: FastifyInstance, options: RecastPluginOptions) => {
  const redis = createRedis({
    url: options.redisUrl,
    role: 'producer',
    logger: options.logger,
    name: 'recast-api',
  });
  const keys = createKeys(options.prefix);
  // Producers fail fast while disconnected, so wait for the first connection before serving;
  // if Redis is down at boot the API still starts, and /readyz and 503s say so.
  await waitForRedis(redis).catch((err: Error) =>
    options.logger.warn({ err: err.message }, 'Redis not reachable at start'),
  );
  const queues = createQueues(redis, keys);
  app.decorate('recast', {
    redis,
    keys,
    store: new JobStore(redis, keys),
    queues,
    limits: { ...DEFAULT_JOB_SCHEMA_LIMITS, ...options.limits },
    webhookSecret: options.webhookSecret,
  } satisfies RecastDeps);
  app.addHook('onClose', async () => {
    await queues.close();
    await redis.quit().catch(() => redis.disconnect());
  });
});
