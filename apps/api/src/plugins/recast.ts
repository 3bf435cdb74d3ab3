import { BatchStore } from '@recast/core/batches';
import { EventLog } from '@recast/core/events';
import { type FileInputLimits, FileUploader, type OutputStore, sweepStaleSpools } from '@recast/core/files';
import { createKeys, createRedis, type Keys, type Logger, waitForRedis } from '@recast/core/infra';
import { JobCreator } from '@recast/core/intake';
import { createDurationEstimator, type DurationEstimator } from '@recast/core/media';
import {
  createNotifyQueue,
  createQueues,
  DEFAULT_JOB_SCHEMA_LIMITS,
  type JobSchemaLimits,
  JobStore,
  type NotifyQueue,
  type Queues,
} from '@recast/core/model';
import { Budgets, Ledger, type PriceTable } from '@recast/core/money';
import type { UrlPolicy } from '@recast/core/net';
import { createInferenceClient, ProviderGate, type ProviderLimits } from '@recast/core/provider';
import { FairQueue } from '@recast/core/scheduling';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';

export interface RecastDeps {
  redis: Redis;
  keys: Keys;
  store: JobStore;
  queues: Queues;
  fair: FairQueue;
  creator: JobCreator;
  ledger: Ledger;
  budgets: Budgets;
  estimator: DurationEstimator;
  prices: PriceTable;
  limits: JobSchemaLimits;
  webhookSecret: string;
  urlPolicy: UrlPolicy;
  /** True when CALLBACK_SECRETS are configured: jobs may then carry a callback_url. */
  callbacks: boolean;
  notify: NotifyQueue;
  batches: BatchStore;
  /** Read-only here: the API reports the provider pressure the workers enforce. */
  gate: ProviderGate;
  events: EventLog;
  /** File inputs: the uploader and its limits; undefined when the API has no provider key. */
  files: { uploader: FileUploader; limits: FileInputLimits } | undefined;
  /** Where kept outputs are read from; undefined when retention is off. */
  outputs: OutputStore | undefined;
  /** For submitJob: the uploader, when file inputs are on. */
  uploader?: FileUploader;
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
  prices: PriceTable;
  fairShareBuffer: number;
  dispatchAttempts?: number;
  urlPolicy: UrlPolicy;
  estimate: { fallbackSeconds: number; concurrency: number; timeoutMs: number; maxMoovBytes: number };
  limits?: Partial<JobSchemaLimits>;
  callbackSecrets: readonly string[];
  providerLimits: Omit<ProviderLimits, 'pendingHoldMs'>;
  eventRetentionMs: number;
  /** The provider's file API, for file inputs; absent without an API key. */
  provider?: { baseUrl: string; apiKey: string; timeoutMs: number };
  files: Omit<FileInputLimits, never> & { putTimeoutMs: number; reuseSeconds: number };
  outputs?: OutputStore;
}

/** Redis, the job store, queues, ledger and estimator, shared by every route and closed with the app. */
export const recastPlugin = fp(async (app: FastifyInstance, options: RecastPluginOptions) => {
  const { logger } = options;
  const redis = createRedis({ url: options.redisUrl, role: 'producer', logger, name: 'recast-api' });
  const keys = createKeys(options.prefix);
  // Producers fail fast while disconnected, so wait for the first connection before serving;
  // if Redis is down at boot the API still starts, and /readyz and 503s say so.
  await waitForRedis(redis).catch((err: Error) =>
    logger.warn({ err: err.message }, 'Redis not reachable at start'),
  );
  const queues = createQueues(redis, keys);
  const store = new JobStore(redis, keys, undefined, options.eventRetentionMs);
  const fair = new FairQueue(redis, keys, queues, {
    buffer: options.fairShareBuffer,
    ...(options.dispatchAttempts ? { dispatchAttempts: options.dispatchAttempts } : {}),
    logger,
  });
  const notify = createNotifyQueue(redis, keys);
  const estimator = createDurationEstimator({ policy: options.urlPolicy, logger, ...options.estimate });
  const provider = options.provider
    ? createInferenceClient({
        baseUrl: options.provider.baseUrl,
        apiKey: options.provider.apiKey,
        requestTimeoutMs: options.provider.timeoutMs,
        connections: 4,
        logger,
      })
    : undefined;
  const { putTimeoutMs, reuseSeconds, ...fileLimits } = options.files;
  const uploader = provider
    ? new FileUploader({ redis, keys, provider, ttlSeconds: reuseSeconds, putTimeoutMs, logger })
    : undefined;
  if (uploader) {
    // Left by a process that crashed mid-upload; older than a day is older than any upload.
    const swept = await sweepStaleSpools(fileLimits.tmpDir, 24 * 3600_000);
    if (swept > 0) logger.info({ swept, dir: fileLimits.tmpDir }, 'removed stale upload temp files');
  }
  app.decorate('recast', {
    redis,
    keys,
    store,
    queues,
    fair,
    creator: new JobCreator(store, fair),
    ledger: new Ledger(redis, keys),
    budgets: new Budgets(redis, keys),
    estimator,
    prices: options.prices,
    limits: { ...DEFAULT_JOB_SCHEMA_LIMITS, ...options.limits },
    webhookSecret: options.webhookSecret,
    urlPolicy: options.urlPolicy,
    callbacks: options.callbackSecrets.length > 0,
    notify,
    batches: new BatchStore(redis, keys, store),
    gate: new ProviderGate(redis, keys, { ...options.providerLimits, pendingHoldMs: 0 }),
    events: new EventLog(redis, keys),
    files: uploader ? { uploader, limits: fileLimits } : undefined,
    outputs: options.outputs,
    ...(uploader ? { uploader } : {}),
  } satisfies RecastDeps);
  app.addHook('onClose', async () => {
    await estimator.close();
    await uploader?.close();
    await provider?.close();
    await Promise.all([queues.close(), notify.close()]);
    await redis.quit().catch(() => redis.disconnect());
  });
});
