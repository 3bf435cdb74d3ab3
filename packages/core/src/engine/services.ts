import type { Redis } from 'ioredis';
import { BatchStore } from '../batches/batch-store.js';
import type { CoreConfig } from '../config/common.js';
import { EventLog } from '../events/events.js';
import { Forecaster } from '../forecast/forecaster.js';
import { ProcessingTimes } from '../forecast/processing.js';
import { connectDatabase, type Database } from '../history/db.js';
import { Records } from '../history/records.js';
import { Durability } from '../infra/durable.js';
import { createKeys, type Keys } from '../infra/keys.js';
import type { Logger } from '../infra/logger.js';
import { createRedis, type RedisRole, redisTargetOf, waitForRedis } from '../infra/redis.js';
import { JobCreator } from '../intake/creator.js';
import { createQueues, type Queues } from '../model/catalog.js';
import { JobStore, type ReconcileDelays } from '../model/job-store.js';
import { BillingChecks } from '../money/billing-checks.js';
import { Budgets } from '../money/budgets.js';
import { Ledger } from '../money/ledger.js';
import { DEFAULT_PRICE_TABLE, type PriceTable, parsePriceTable } from '../money/price-table.js';
import type { RequestAdmission } from '../provider/inference-client.js';
import { ProviderGate } from '../provider/provider-gate.js';
import { ProviderQuota, type QuotaGroup, quotaAdmission } from '../provider/provider-quota.js';
import { FairQueue } from '../scheduling/fair-queue.js';
import { BudgetParking } from '../scheduling/parking.js';

/**
 * Everything a job's life is kept in, over one Redis connection: built here, once per process,
 * from the settings every process shares, so the API and the workers cannot build them with
 * different arguments (the reconcile delays written with each transition, the fair-share buffer,
 * the provider limits). Apps never construct these themselves.
 */
export interface Services {
  readonly config: CoreConfig;
  readonly logger: Logger;
  /** The connection every service uses (its role decides: producers fail fast, workers wait). */
  readonly redis: Redis;
  readonly keys: Keys;
  readonly prices: PriceTable;
  readonly queues: Queues;
  readonly store: JobStore;
  readonly creator: JobCreator;
  readonly ledger: Ledger;
  readonly budgets: Budgets;
  readonly checks: BillingChecks;
  readonly fair: FairQueue;
  readonly parking: BudgetParking;
  readonly batches: BatchStore;
  readonly gate: ProviderGate;
  /** Processing time per output second, observed on completed tasks (ETAs, overdue polls). */
  readonly processing: ProcessingTimes;
  /** Estimated finish times of batches, backlogs and quotes, and why work is not moving. */
  readonly forecaster: Forecaster;
  /** The provider's other quotas (task reads, uploads), shared by every process. */
  readonly quotas: Record<QuotaGroup, ProviderQuota>;
  /** What a client of this process waits on before each request (InferenceClient.useAdmission). */
  readonly admission: RequestAdmission;
  readonly events: EventLog;
  /** PostgreSQL, what has finished; undefined without DATABASE_URL (core's own tests). */
  readonly db: Database | undefined;
  /** Reads that do not care whether a record is live (Redis) or archived (PostgreSQL). */
  readonly records: Records;
  /**
   * Acknowledged writes wait for REDIS_WAIT_REPLICAS replicas (see durable.ts); `durable(write)`
   * runs a write on `redis` and answers once it is replicated (at once when no wait is set).
   */
  readonly durability: Durability;
  durable<T>(write: () => Promise<T>): Promise<T>;
  /** Close the queues, then the connections (when they were opened here). */
  close(): Promise<void>;
}

export interface ServicesOptions {
  config: CoreConfig;
  logger: Logger;
  /** `producer` (the API: fail fast while disconnected) or `worker` (wait out a reconnect). */
  role: RedisRole;
  /** The connection's client name in Redis (CLIENT LIST). */
  name: string;
  /** Use this connection instead of opening one (the caller closes it). */
  redis?: Redis;
}

/** When the reconciler looks at a job waiting on the provider, per state (see transition-2.lua). */
export function reconcileDelaysOf(config: CoreConfig): ReconcileDelays {
  return {
    submitting: config.ORPHAN_AFTER_MS,
    submitted: config.RECONCILE_SUBMITTED_AFTER_MS ?? config.RECONCILE_AFTER_MS,
    running: config.RECONCILE_RUNNING_AFTER_MS ?? config.RECONCILE_AFTER_MS,
    cancelling: config.RECONCILE_CANCELLING_AFTER_MS ?? Math.min(config.RECONCILE_AFTER_MS, 60_000),
  };
}

export function pricesOf(config: CoreConfig): PriceTable {
  return config.PRICE_TABLE ? parsePriceTable(config.PRICE_TABLE) : DEFAULT_PRICE_TABLE;
}

/** Output seconds per task assumed for forecasts until completed tasks have shown the real mix. */
export const DEFAULT_SECONDS_PER_TASK = 10;

/** The dispatch steps handed to BullMQ ahead while submits are paced (see feedBuffer). */
export const PACED_FEED_BUFFER = 4;

/**
 * How many dispatch steps the fair-share feeder hands BullMQ ahead of the gate. A newcomer tenant
 * waits behind these, and while submits are paced (PROVIDER_SUBMIT_BURST) each costs it one pace
 * interval: so the buffer is then at most PACED_FEED_BUFFER, enough to keep a gate that admits one
 * submit per interval busy (the feeder refills it after every dispatch). Unpaced, FAIR_SHARE_BUFFER
 * keeps a fast gate fed.
 */
export function feedBuffer(config: CoreConfig): number {
  const paced = config.PROVIDER_SUBMITS_PER_WINDOW > 0 && config.PROVIDER_SUBMIT_BURST > 0;
  return paced ? Math.min(config.FAIR_SHARE_BUFFER, PACED_FEED_BUFFER) : config.FAIR_SHARE_BUFFER;
}

/**
 * Open the connection (a producer waits for its first connect: it fails fast afterwards, and the
 * queues send commands as they are built; if Redis is down at start it goes on, and callers see
 * 503s until it is back) and build every service on it.
 */
export async function createServices(options: ServicesOptions): Promise<Services> {
  const { config, logger } = options;
  const redis =
    options.redis ??
    createRedis({ target: redisTargetOf(config), role: options.role, logger, name: options.name });
  if (!options.redis && options.role === 'producer') {
    await waitForRedis(redis).catch((err: Error) =>
      logger.warn({ err: err.message }, 'Redis not reachable at start'),
    );
  }
  const keys = createKeys(config.REDIS_PREFIX);
  const queues = createQueues(redis, keys, {
    completedRetentionSeconds: config.REDIS_JOB_RETENTION_MS / 1000,
  });
  const store = new JobStore(
    redis,
    keys,
    reconcileDelaysOf(config),
    config.EVENTS_RETENTION_MS,
    config.JOB_TIMEOUT_SECONDS,
    config.RECONCILE_MIN_AFTER_MS,
  );
  const ledger = new Ledger(redis, keys);
  const durability = new Durability({
    replicas: config.REDIS_WAIT_REPLICAS,
    timeoutMs: config.REDIS_WAIT_TIMEOUT_MS,
  });
  const fair = new FairQueue(redis, keys, queues, {
    buffer: feedBuffer(config),
    dispatchAttempts: config.DISPATCH_ATTEMPTS,
    logger,
  });
  const db = config.DATABASE_URL
    ? connectDatabase({ url: config.DATABASE_URL, logger, max: config.DATABASE_POOL_SIZE })
    : undefined;
  const batches = new BatchStore(redis, keys, store);
  const budgets = new Budgets(redis, keys);
  const quota = (group: QuotaGroup, perWindow: number) =>
    new ProviderQuota(redis, keys, group, {
      perWindow,
      windowMs: config.PROVIDER_RATE_WINDOW_MS,
      pendingHoldMs: config.INFERENCE_TIMEOUT_MS,
      maxWaitMs: config.PROVIDER_QUOTA_MAX_WAIT_MS,
    });
  const quotas = {
    reads: quota('reads', config.PROVIDER_READS_PER_WINDOW),
    uploads: quota('uploads', config.PROVIDER_UPLOADS_PER_WINDOW),
  };
  const gate = new ProviderGate(redis, keys, {
    submitsPerWindow: config.PROVIDER_SUBMITS_PER_WINDOW,
    windowMs: config.PROVIDER_RATE_WINDOW_MS,
    maxInFlight: config.PROVIDER_MAX_IN_FLIGHT,
    // A submit still unanswered holds its place in the window until the client gives up on it.
    pendingHoldMs: config.INFERENCE_TIMEOUT_MS,
    burst: config.PROVIDER_SUBMIT_BURST,
  });
  const processing = new ProcessingTimes(redis, keys, {
    defaultMsPerSecond: config.ETA_DEFAULT_MS_PER_OUTPUT_SECOND,
    defaultSecondsPerTask: DEFAULT_SECONDS_PER_TASK,
  });
  const forecaster = new Forecaster({
    redis,
    keys,
    gate,
    fair,
    processing,
    // At most the feed buffer (and steps put back for a while): a few reads.
    handed: async () =>
      (await queues.dispatch.getJobs(['waiting', 'delayed', 'prioritized'], 0, 199)).flatMap((j) =>
        j?.data?.jobId ? [j.data.jobId] : [],
      ),
  });
  return {
    config,
    logger,
    redis,
    keys,
    prices: pricesOf(config),
    queues,
    store,
    creator: new JobCreator(store, fair),
    ledger,
    budgets,
    checks: new BillingChecks(redis, keys),
    fair,
    parking: new BudgetParking(redis, keys, store, ledger, fair, logger),
    batches,
    gate,
    processing,
    forecaster,
    quotas,
    admission: quotaAdmission(quotas),
    events: new EventLog(redis, keys),
    db,
    records: new Records({ redis, keys, store, batches, budgets, ledger, forecaster }, db),
    durability,
    durable: (write) => durability.run(redis, write),
    async close() {
      await queues.close();
      await db?.close();
      if (!options.redis) await redis.quit().catch(() => redis.disconnect());
    },
  };
}
