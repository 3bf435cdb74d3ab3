import {
  BudgetParking,
  createKeys,
  createQueues,
  createRedis,
  FairQueue,
  type InferenceClient,
  JobStore,
  Ledger,
  type Logger,
  type PriceTable,
  ProviderGate,
  type ProviderLimits,
} from '@recast/core';
import { Worker } from 'bullmq';
import type { WorkerConfig } from './config.js';
import type { WorkerContext } from './context.js';
import { type MaintenanceOptions, startMaintenance } from './maintenance.js';
import { createDispatchProcessor } from './processors/dispatch.js';
import { createSettleProcessor } from './processors/settle.js';

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
  inFlightPollMs: number;
  maintenance: MaintenanceOptions;
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
    inFlightPollMs: config.IN_FLIGHT_POLL_MS,
    maintenance: {
      feedIntervalMs: config.FEED_INTERVAL_MS,
      unparkIntervalMs: config.UNPARK_INTERVAL_MS,
      inFlightSweepMs: config.IN_FLIGHT_SWEEP_MS,
    },
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
  const store = new JobStore(producer, keys);
  const ledger = new Ledger(producer, keys);
  const queues = createQueues(producer, keys);
  const fair = new FairQueue(producer, keys, queues, { buffer: options.fairShareBuffer, logger });
  const context: WorkerContext = {
    store,
    ledger,
    queues,
    fair,
    gate: new ProviderGate(producer, keys, options.providerLimits),
    parking: new BudgetParking(producer, keys, store, ledger, fair, logger),
    client: options.client,
    prices: options.prices,
    logger,
  };

  let dispatchWorker: Worker | undefined;
  const dispatch = new Worker(
    'dispatch',
    createDispatchProcessor({
      ...context,
      publicUrl: options.publicUrl,
      webhookSecret: options.webhookSecret,
      rateLimitFallbackMs: options.rateLimitFallbackMs,
      inFlightPollMs: options.inFlightPollMs,
      worker: () => dispatchWorker!,
    }),
    {
      connection,
      prefix: keys.bullPrefix,
      concurrency: options.dispatchConcurrency,
      autorun: false,
      // BullMQ honours a manual rateLimit() on every worker of the queue only when a limiter is
      // set; this one never limits by itself (the provider gate does the counting).
      limiter: { max: 1_000_000_000, duration: 1000 },
    },
  );
  dispatchWorker = dispatch;
  const settle = new Worker(
    'settle',
    createSettleProcessor({ ...context, recheckMs: options.recheckMs, maxRechecks: options.maxRechecks }),
    { connection, prefix: keys.bullPrefix, concurrency: options.settleConcurrency, autorun: false },
  );

  for (const worker of [dispatch, settle]) {
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
  await Promise.all([dispatch.waitUntilReady(), settle.waitUntilReady()]);
  const maintenance = startMaintenance(context, options.maintenance);
  void fair.kick();

  return {
    dispatch,
    settle,
    context,
    async close() {
      await maintenance.stop();
      // Let in-flight steps finish, then drop the connections.
      await Promise.all([dispatch.close(), settle.close()]);
      await queues.close();
      await Promise.all([
        connection.quit().catch(() => connection.disconnect()),
        producer.quit().catch(() => producer.disconnect()),
      ]);
    },
  };
}
