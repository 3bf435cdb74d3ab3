import { BatchStore, loadBatchView } from '@recast/core/batches';
import { createOutputStore, type OutputStore } from '@recast/core/files';
import { createKeys, createRedis, type Logger } from '@recast/core/infra';
import type { Registry } from '@recast/core/metrics';
import { createQueues, JobStore, type ReconcileDelays } from '@recast/core/model';
import { BillingChecks, Budgets, Ledger, type PriceTable } from '@recast/core/money';
import { guardedDispatcher, type UrlPolicy } from '@recast/core/net';
import {
  type InferenceClient,
  ProviderGate,
  type ProviderLimits,
  RateLimitBackoff,
} from '@recast/core/provider';
import { BudgetParking, FairQueue } from '@recast/core/scheduling';
import { type Job, Queue, Worker } from 'bullmq';
import type { WorkerConfig } from './config.js';
import type { WorkerContext } from './context.js';
import { type MaintenanceOptions, startMaintenance } from './maintenance.js';
import { startWorkerMetrics } from './metrics/index.js';
import { startNotifyWorker } from './notify/index.js';
import { createCancelProcessor } from './processors/cancel.js';
import { createDispatchProcessor } from './processors/dispatch.js';
import { createReconcileProcessor } from './processors/reconcile.js';
import { createRetainProcessor } from './processors/retain.js';
import { createSettleProcessor } from './processors/settle.js';
import { settleOrCancel } from './processors/settle-queue.js';

export interface StartWorkersOptions {
  redisUrl: string;
  prefix: string;
  logger: Logger;
  client: InferenceClient;
  prices: PriceTable;
  publicUrl: string;
  webhookSecret: string;
  dispatchConcurrency: number;
  settleConcurrency: number;
  recheckMs: number;
  maxRechecks: number;
  rateLimitFallbackMs: number;
  providerLimits: ProviderLimits;
  /** Dispatch jobs handed to BullMQ ahead of time; fairness is decided for the rest. */
  fairShareBuffer: number;
  dispatchAttempts?: number;
  inFlightPollMs: number;
  maintenance: MaintenanceOptions;
  lockMs: number;
  callbacks: { secrets: readonly string[]; urlPolicy: UrlPolicy; timeoutMs: number; concurrency: number };
  reconcile: { intervalMs: number; maxPerPass: number; delays: ReconcileDelays; orphanScanPages: number };
  /** How long job and batch events stay in a tenant's stream. */
  eventRetentionMs?: number;
  /** This process's metrics registry (main.ts serves it on METRICS_PORT); no metrics without it. */
  registry?: Registry | undefined;
  /** Keep completed outputs; undefined when OUTPUT_STORE is unset. */
  retention?: RetentionOptions;
}

export interface RetentionOptions {
  store: OutputStore;
  /** Output links are fetched through the SSRF guard with this policy. */
  urlPolicy: UrlPolicy;
  tmpDir: string;
  maxBytes: number;
  timeoutMs: number;
  attempts: number;
  concurrency: number;
  toleranceSeconds: number;
}

/** The options `main.ts` derives from the environment (tests use it to run workers the same way). */
export function workerOptions(
  config: WorkerConfig,
  deps: { logger: Logger; client: InferenceClient; prices: PriceTable },
): StartWorkersOptions {
  return {
    redisUrl: config.REDIS_URL,
    prefix: config.REDIS_PREFIX,
    ...deps,
    publicUrl: config.PUBLIC_URL,
    webhookSecret: config.WEBHOOK_SECRET,
    dispatchConcurrency: config.DISPATCH_CONCURRENCY,
    settleConcurrency: config.SETTLE_CONCURRENCY,
    recheckMs: config.SETTLE_RECHECK_MS,
    maxRechecks: config.SETTLE_MAX_RECHECKS,
    rateLimitFallbackMs: config.RATE_LIMIT_FALLBACK_MS,
    providerLimits: {
      submitsPerWindow: config.PROVIDER_SUBMITS_PER_WINDOW,
      windowMs: config.PROVIDER_RATE_WINDOW_MS,
      maxInFlight: config.PROVIDER_MAX_IN_FLIGHT,
      pendingHoldMs: config.INFERENCE_TIMEOUT_MS,
    },
    fairShareBuffer: config.FAIR_SHARE_BUFFER,
    dispatchAttempts: config.DISPATCH_ATTEMPTS,
    inFlightPollMs: config.IN_FLIGHT_POLL_MS,
    maintenance: {
      feedIntervalMs: config.FEED_INTERVAL_MS,
      unparkIntervalMs: config.UNPARK_INTERVAL_MS,
      inFlightSweepMs: config.IN_FLIGHT_SWEEP_MS,
    },
    lockMs: config.WORKER_LOCK_MS,
    eventRetentionMs: config.EVENTS_RETENTION_MS,
    callbacks: {
      secrets: config.CALLBACK_SECRETS,
      urlPolicy: { allowHosts: config.SSRF_ALLOW_HOSTS },
      timeoutMs: config.CALLBACK_TIMEOUT_MS,
      concurrency: config.NOTIFY_CONCURRENCY,
    },
    reconcile: {
      intervalMs: config.RECONCILE_INTERVAL_MS,
      maxPerPass: config.RECONCILE_MAX_PER_PASS,
      orphanScanPages: config.ORPHAN_SCAN_PAGES,
      delays: {
        submitting: config.ORPHAN_AFTER_MS,
        submitted: config.RECONCILE_SUBMITTED_AFTER_MS ?? config.RECONCILE_AFTER_MS,
        running: config.RECONCILE_RUNNING_AFTER_MS ?? config.RECONCILE_AFTER_MS,
        cancelling: config.RECONCILE_CANCELLING_AFTER_MS ?? Math.min(config.RECONCILE_AFTER_MS, 60_000),
      },
    },
    ...(config.OUTPUT_STORE
      ? {
          retention: {
            store: createOutputStore(config.OUTPUT_STORE),
            urlPolicy: { allowHosts: config.SSRF_ALLOW_HOSTS },
            tmpDir: config.OUTPUT_TMP_DIR,
            maxBytes: config.OUTPUT_MAX_BYTES,
            timeoutMs: config.OUTPUT_DOWNLOAD_TIMEOUT_MS,
            attempts: config.OUTPUT_DOWNLOAD_ATTEMPTS,
            concurrency: config.OUTPUT_CONCURRENCY,
            toleranceSeconds: config.BILLING_TOLERANCE_MS / 1000,
          },
        }
      : {}),
  };
}

export interface RunningWorkers {
  dispatch: Worker;
  settle: Worker;
  context: WorkerContext;
  close(): Promise<void>;
}

/** Start the dispatch and settle workers, and the background duties, on their own connections. */
export async function startWorkers(options: StartWorkersOptions): Promise<RunningWorkers> {
  const { logger } = options;
  const keys = createKeys(options.prefix);
  // Worker connections block and must survive reconnects; commands from processors share one.
  const connection = createRedis({ url: options.redisUrl, role: 'worker', logger, name: 'recast-worker' });
  const producer = createRedis({
    url: options.redisUrl,
    role: 'worker',
    logger,
    name: 'recast-worker-producer',
  });
  const store = new JobStore(producer, keys, options.reconcile.delays, options.eventRetentionMs);
  const ledger = new Ledger(producer, keys);
  const queues = createQueues(producer, keys);
  const fair = new FairQueue(producer, keys, queues, {
    buffer: options.fairShareBuffer,
    ...(options.dispatchAttempts ? { dispatchAttempts: options.dispatchAttempts } : {}),
    logger,
  });
  const batches = new BatchStore(producer, keys, store);
  const budgets = new Budgets(producer, keys);
  // Signed callbacks to clients, when the deployment has signing secrets.
  const notifier =
    options.callbacks.secrets.length > 0
      ? await startNotifyWorker({
          connection,
          keys,
          store,
          batchView: (batchId) => loadBatchView({ batches, budgets, ledger }, batchId),
          logger,
          secrets: options.callbacks.secrets,
          urlPolicy: options.callbacks.urlPolicy,
          timeoutMs: options.callbacks.timeoutMs,
          concurrency: options.callbacks.concurrency,
        })
      : undefined;
  const context: WorkerContext = {
    store,
    batches,
    budgets,
    ledger,
    queues,
    fair,
    gate: new ProviderGate(producer, keys, options.providerLimits),
    parking: new BudgetParking(producer, keys, store, ledger, fair, logger),
    client: options.client,
    prices: options.prices,
    logger,
    notify: notifier?.queue,
    retention: options.retention ? { attempts: options.retention.attempts } : undefined,
  };

  const metrics = options.registry
    ? await startWorkerMetrics({
        registry: options.registry,
        redisUrl: options.redisUrl,
        keys,
        logger,
        providerLimits: options.providerLimits,
        notify: notifier !== undefined,
      })
    : undefined;
  const untimed = (step: (job: Job) => Promise<unknown>) => step;
  const timeDispatch = metrics?.timeDispatch ?? untimed;
  const timeSettle = metrics?.timeSettle ?? untimed;
  const timeCancel = metrics?.timeCancel ?? untimed;

  const orphans = { maxPages: options.reconcile.orphanScanPages, pageSize: 100 };
  // A dead worker's step is noticed after the lock lapses; give each step a few chances.
  const lock = { lockDuration: options.lockMs, stalledInterval: options.lockMs, maxStalledCount: 3 };
  // What the dispatch and settle workers share: the lock, the connection, and a limiter that never
  // limits by itself (the provider gate counts) but makes BullMQ honour a manual rateLimit() (a
  // 429's pause) on every worker of the queue, which it does only when a limiter is set.
  const shared = {
    ...lock,
    connection,
    prefix: keys.bullPrefix,
    autorun: false,
    limiter: { max: 1_000_000_000, duration: 1000 },
  };
  let dispatchWorker: Worker | undefined;
  let settleWorker: Worker | undefined;
  const dispatch = new Worker(
    'dispatch',
    timeDispatch(
      createDispatchProcessor({
        ...context,
        publicUrl: options.publicUrl,
        webhookSecret: options.webhookSecret,
        rateLimitBackoff: new RateLimitBackoff(options.rateLimitFallbackMs),
        inFlightPollMs: options.inFlightPollMs,
        worker: () => dispatchWorker!,
        orphans,
        queueToSubmit: metrics?.metrics.queueToSubmitSeconds,
      }),
    ),
    { ...shared, concurrency: options.dispatchConcurrency },
  );
  dispatchWorker = dispatch;
  const settle = new Worker(
    'settle',
    settleOrCancel(
      timeSettle(
        createSettleProcessor({ ...context, recheckMs: options.recheckMs, maxRechecks: options.maxRechecks }),
      ),
      timeCancel(createCancelProcessor({ ...context, recheckMs: options.recheckMs })),
      { worker: () => settleWorker!, backoff: new RateLimitBackoff(options.rateLimitFallbackMs), logger },
    ),
    { ...shared, concurrency: options.settleConcurrency },
  );
  settleWorker = settle;
  // The reconciler: a job scheduler makes one pass per interval across all worker processes.
  const maintenanceQueue = new Queue('maintenance', { connection: producer, prefix: keys.bullPrefix });
  await maintenanceQueue.upsertJobScheduler(
    'reconcile',
    { every: options.reconcile.intervalMs },
    { name: 'reconcile', opts: { removeOnComplete: 100, removeOnFail: 100 } },
  );
  const reconcile = new Worker(
    'maintenance',
    createReconcileProcessor({
      ...context,
      maxPerPass: options.reconcile.maxPerPass,
      againAfterMs: options.reconcile.delays.submitted,
      orphans,
    }),
    { ...lock, connection, prefix: keys.bullPrefix, concurrency: 1, autorun: false },
  );

  // Kept outputs: downloads on their own queue, so a slow provider CDN never holds up settling.
  const retention = options.retention;
  const downloads = retention ? guardedDispatcher(retention.urlPolicy) : undefined;
  const retain =
    retention && downloads
      ? new Worker(
          'retain',
          createRetainProcessor({
            store,
            checks: new BillingChecks(producer, keys),
            logger,
            retain: {
              store: retention.store,
              policy: retention.urlPolicy,
              dispatcher: downloads,
              tmpDir: retention.tmpDir,
              maxBytes: retention.maxBytes,
              timeoutMs: retention.timeoutMs,
              toleranceSeconds: retention.toleranceSeconds,
              logger,
            },
          }),
          {
            ...lock,
            connection,
            prefix: keys.bullPrefix,
            concurrency: retention.concurrency,
            autorun: false,
          },
        )
      : undefined;
  if (retention) logger.info({ store: retention.store.description }, 'output retention on');

  for (const worker of [dispatch, settle, reconcile, ...(retain ? [retain] : [])]) {
    worker.on('error', (err) => logger.error({ err: err.message, queue: worker.name }, 'worker error'));
    worker.on('failed', (job, err) =>
      logger.warn(
        {
          queue: worker.name,
          bullJobId: job?.id,
          jobId: job?.data?.jobId,
          err: err.message,
          attemptsMade: job?.attemptsMade,
        },
        'step failed',
      ),
    );
    void worker.run();
  }
  // Each finished dispatch makes room in the buffer: refill it in fair order.
  dispatch.on('completed', () => void fair.kick());
  dispatch.on('failed', () => void fair.kick());
  await Promise.all([
    dispatch.waitUntilReady(),
    settle.waitUntilReady(),
    reconcile.waitUntilReady(),
    retain?.waitUntilReady(),
  ]);
  const maintenance = startMaintenance(context, options.maintenance);
  void fair.kick();

  return {
    dispatch,
    settle,
    context,
    async close() {
      await maintenance.stop();
      // Let in-flight steps finish, then drop the connections.
      await Promise.all([
        dispatch.close(),
        settle.close(),
        reconcile.close(),
        retain?.close(),
        notifier?.close(),
      ]);
      await downloads?.close();
      await Promise.all([queues.close(), maintenanceQueue.close(), metrics?.close()]);
      await Promise.all([
        connection.quit().catch(() => connection.disconnect()),
        producer.quit().catch(() => producer.disconnect()),
      ]);
    },
  };
}
