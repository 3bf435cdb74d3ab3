import {
  CostLedger,
  createKeys,
  createQueues,
  createRedis,
  type InferenceClient,
  JobStore,
  type Logger,
  type PriceTable,
} from '@recast/core';
import { Worker } from 'bullmq';
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
}

export interface RunningWorkers {
  dispatch: Worker;
  settle: Worker;
  close(): Promise<void>;
}

/** Start the dispatch and settle workers on their own Redis connections. */
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
  const ledger = new CostLedger(producer, keys);
  const queues = createQueues(producer, keys);

  let dispatchWorker: Worker | undefined;
  const dispatch = new Worker(
    'dispatch',
    createDispatchProcessor({
      store,
      queues,
      client: options.client,
      publicUrl: options.publicUrl,
      webhookSecret: options.webhookSecret,
      logger,
      rateLimitFallbackMs: options.rateLimitFallbackMs,
      worker: () => dispatchWorker!,
    }),
    { connection, prefix: keys.bullPrefix, concurrency: options.dispatchConcurrency, autorun: false },
  );
  dispatchWorker = dispatch;
  const settle = new Worker(
    'settle',
    createSettleProcessor({
      store,
      ledger,
      queues,
      client: options.client,
      prices: options.prices,
      logger,
      recheckMs: options.recheckMs,
      maxRechecks: options.maxRechecks,
    }),
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
  await Promise.all([dispatch.waitUntilReady(), settle.waitUntilReady()]);

  return {
    dispatch,
    settle,
    async close() {
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
