import { loadBatchView } from '@recast/core/batches';
import { createServices, Engine, type ProviderBinding } from '@recast/core/engine';
import { createOutputStore, type OutputStore } from '@recast/core/files';
import { keepMigrating } from '@recast/core/history';
import { createRedis, type Logger, onReconnect, redisTargetOf } from '@recast/core/infra';
import type { Registry } from '@recast/core/metrics';
import {
  AUDIT_SCHEDULER,
  MAINTENANCE_JOB_OPTIONS,
  MAINTENANCE_QUEUE,
  RECONCILE_SCHEDULER,
} from '@recast/core/model';
import { guardedDispatcher, type UrlPolicy } from '@recast/core/net';
import { type InferenceClient, RateLimitBackoff } from '@recast/core/provider';
import { queueTelemetry } from '@recast/core/telemetry';
import { type Job, Worker } from 'bullmq';
import { startArchiving } from './archive.js';
import type { WorkerConfig } from './config.js';
import { startMaintenance } from './maintenance.js';
import { startWorkerMetrics } from './metrics/index.js';
import { startNotifyWorker } from './notify/index.js';
import { createDispatchProcessor } from './processors/dispatch.js';
import { createReconcileProcessor } from './processors/reconcile.js';
import { createRetainProcessor } from './processors/retain.js';
import {
  createCancelProcessor,
  createSettleProcessor,
  createWatchProcessor,
  settleOrCancel,
} from './processors/settle.js';

export interface StartWorkersOptions {
  config: WorkerConfig;
  logger: Logger;
  client: InferenceClient;
  /** This process's metrics registry (main.ts serves it on METRICS_PORT); no metrics without it. */
  registry?: Registry | undefined;
}

export interface RunningWorkers {
  dispatch: Worker;
  settle: Worker;
  engine: Engine;
  close(): Promise<void>;
}

/** The provider side of the engine, from the worker's settings. */
function providerBinding(config: WorkerConfig, client: InferenceClient): ProviderBinding {
  return {
    client,
    publicUrl: config.PUBLIC_URL,
    dispatchBackoff: new RateLimitBackoff(config.RATE_LIMIT_FALLBACK_MS),
    settleBackoff: new RateLimitBackoff(config.RATE_LIMIT_FALLBACK_MS),
    inFlightPollMs: config.IN_FLIGHT_POLL_MS,
    recheckMs: config.SETTLE_RECHECK_MS,
    maxRechecks: config.SETTLE_MAX_RECHECKS,
    orphans: {
      graceMs: config.ORPHAN_GRACE_MS,
      timeoutMs: config.ORPHAN_SEARCH_TIMEOUT_MS,
      watchMs: config.ORPHAN_WATCH_MS,
      pageSize: 100,
    },
    reconcile: {
      maxPerPass: config.RECONCILE_MAX_PER_PASS,
      againAfterMs: config.RECONCILE_SUBMITTED_AFTER_MS ?? config.RECONCILE_AFTER_MS,
      floorMs: config.RECONCILE_MIN_AFTER_MS,
    },
  };
}

/**
 * Start the BullMQ workers over one engine: dispatch, settle (and provider cancels), reconcile,
 * retain and notify, plus the background duties. Worker connections block and must survive
 * reconnects; the engine's commands share one connection of their own.
 */
export async function startWorkers(options: StartWorkersOptions): Promise<RunningWorkers> {
  const { config, logger } = options;
  const services = await createServices({ config, logger, role: 'worker', name: 'recast-worker-producer' });
  // Every read of a task (settles, polls, orphan searches, cancels) waits its turn in the quota
  // all processes share.
  options.client.useAdmission(services.admission);
  // The history schema: brought up to date before archiving starts, or in the background while
  // PostgreSQL is down (the live path does not wait for it).
  const migration = keepMigrating(config.DATABASE_URL, logger);
  await migration.first;
  const { keys, queues } = services;
  const target = redisTargetOf(config);
  const connection = createRedis({ target, role: 'worker', logger, name: 'recast-worker' });
  const urlPolicy: UrlPolicy = { allowHosts: config.SSRF_ALLOW_HOSTS };
  const store: OutputStore | undefined = config.OUTPUT_STORE
    ? createOutputStore(config.OUTPUT_STORE)
    : undefined;

  const metrics = options.registry
    ? await startWorkerMetrics({
        registry: options.registry,
        redisTarget: target,
        keys,
        logger,
        providerLimits: services.gate.limits,
        notify: config.CALLBACK_SECRETS.length > 0,
      })
    : undefined;
  const engine = new Engine(services, {
    provider: providerBinding(config, options.client),
    callbacks: config.CALLBACK_SECRETS.length > 0,
    ...(store ? { retention: { attempts: config.OUTPUT_DOWNLOAD_ATTEMPTS } } : {}),
    ...(metrics ? { metrics: metrics.metrics } : {}),
  });
  // Webhooks that came while Redis was unreachable were refused, and the provider does not send
  // them again: once it is back, every job waiting on the provider is looked at now.
  const stopWatchingOutages = onReconnect(services.redis, () => {
    engine
      .afterRedisOutage()
      .catch((err: unknown) =>
        logger.error(
          { err: (err as Error).message },
          'could not bring the reconcile of in-flight jobs forward',
        ),
      );
  });
  // Signed callbacks to clients, when the deployment has signing secrets.
  const notifier =
    config.CALLBACK_SECRETS.length > 0
      ? await startNotifyWorker({
          connection,
          keys,
          store: services.store,
          batchView: (batchId) => loadBatchView(services, batchId),
          logger,
          secrets: config.CALLBACK_SECRETS,
          urlPolicy,
          timeoutMs: config.CALLBACK_TIMEOUT_MS,
          concurrency: config.NOTIFY_CONCURRENCY,
        })
      : undefined;

  const untimed = (step: (job: Job, token?: string) => Promise<unknown>) => step;
  const timeDispatch = metrics?.timeDispatch ?? untimed;
  const timeSettle = metrics?.timeSettle ?? untimed;
  const timeCancel = metrics?.timeCancel ?? untimed;
  // A dead worker's step is noticed after the lock lapses. Every step is idempotent, so it gets
  // several chances (a step that keeps meeting dying workers is not at fault), and what one that
  // still fails for good leaves behind is recovered by the maintenance sweeps (money, dispatches).
  const lock = {
    lockDuration: config.WORKER_LOCK_MS,
    stalledInterval: config.WORKER_LOCK_MS,
    maxStalledCount: 5,
  };
  // What the dispatch and settle workers share: the lock, the connection, and a limiter that never
  // limits by itself (the provider gate counts) but makes BullMQ honour a manual rateLimit() (a
  // 429's pause) on every worker of the queue, which it does only when a limiter is set.
  const shared = {
    ...lock,
    connection,
    prefix: keys.bullPrefix,
    autorun: false,
    limiter: { max: 1_000_000_000, duration: 1000 },
    // Traced (when this process traces): each step's span continues the trace of its enqueue.
    ...queueTelemetry(),
  };
  let dispatchWorker: Worker | undefined;
  let settleWorker: Worker | undefined;
  const dispatch = new Worker(
    'dispatch',
    timeDispatch(createDispatchProcessor(engine, () => dispatchWorker!)),
    { ...shared, concurrency: config.DISPATCH_CONCURRENCY },
  );
  dispatchWorker = dispatch;
  const settle = new Worker(
    'settle',
    settleOrCancel(
      timeSettle(createSettleProcessor(engine, () => settleWorker!)),
      timeCancel(createCancelProcessor(engine, () => settleWorker!)),
      createWatchProcessor(engine, () => settleWorker!),
    ),
    { ...shared, concurrency: config.SETTLE_CONCURRENCY },
  );
  settleWorker = settle;
  // The reconciler: a job scheduler makes one pass per interval across all worker processes.
  await queues.maintenance.upsertJobScheduler(
    RECONCILE_SCHEDULER,
    { every: config.RECONCILE_INTERVAL_MS },
    { name: RECONCILE_SCHEDULER, opts: MAINTENANCE_JOB_OPTIONS },
  );
  // The audit of the books against the provider's task list, on the same queue (0 = never).
  if (config.AUDIT_INTERVAL_MS > 0) {
    await queues.maintenance.upsertJobScheduler(
      AUDIT_SCHEDULER,
      { every: config.AUDIT_INTERVAL_MS },
      { name: AUDIT_SCHEDULER, opts: MAINTENANCE_JOB_OPTIONS },
    );
  } else {
    await queues.maintenance.removeJobScheduler(AUDIT_SCHEDULER);
  }
  const reconcile = new Worker(MAINTENANCE_QUEUE, createReconcileProcessor(engine, config.AUDIT_WINDOW_MS), {
    ...lock,
    connection,
    prefix: keys.bullPrefix,
    concurrency: 1,
    autorun: false,
  });

  // Kept outputs: downloads on their own queue, so a slow provider CDN never holds up settling.
  const downloads = store ? guardedDispatcher(urlPolicy) : undefined;
  const retain =
    store && downloads
      ? new Worker(
          'retain',
          createRetainProcessor({
            store: services.store,
            checks: services.checks,
            logger,
            retain: {
              store,
              policy: urlPolicy,
              dispatcher: downloads,
              tmpDir: config.OUTPUT_TMP_DIR,
              maxBytes: config.OUTPUT_MAX_BYTES,
              timeoutMs: config.OUTPUT_DOWNLOAD_TIMEOUT_MS,
              toleranceSeconds: config.BILLING_TOLERANCE_MS / 1000,
              logger,
            },
          }),
          {
            ...lock,
            connection,
            prefix: keys.bullPrefix,
            concurrency: config.OUTPUT_CONCURRENCY,
            autorun: false,
          },
        )
      : undefined;
  if (store) logger.info({ store: store.description }, 'output retention on');

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
  dispatch.on('completed', () => void services.fair.kick());
  dispatch.on('failed', () => void services.fair.kick());
  await Promise.all([
    dispatch.waitUntilReady(),
    settle.waitUntilReady(),
    reconcile.waitUntilReady(),
    retain?.waitUntilReady(),
  ]);
  const maintenance = startMaintenance(engine, logger, {
    feedIntervalMs: config.FEED_INTERVAL_MS,
    unparkIntervalMs: config.UNPARK_INTERVAL_MS,
    inFlightSweepMs: config.IN_FLIGHT_SWEEP_MS,
  });
  void services.fair.kick();
  const archiving = services.db
    ? startArchiving(services, services.db, logger, {
        intervalMs: config.ARCHIVE_INTERVAL_MS,
        retentionMs: config.REDIS_JOB_RETENTION_MS,
        faultPauseMs: config.ARCHIVE_FAULT_PAUSE_MS,
      })
    : undefined;

  return {
    dispatch,
    settle,
    engine,
    async close() {
      stopWatchingOutages();
      await maintenance.stop();
      migration.stop();
      await archiving?.stop();
      // Let in-flight steps finish, then drop the connections.
      await Promise.all([
        dispatch.close(),
        settle.close(),
        reconcile.close(),
        retain?.close(),
        notifier?.close(),
      ]);
      await downloads?.close();
      await Promise.all([services.close(), metrics?.close()]);
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
