import type { BatchView } from '@recast/core/batches';
import { createCallbackSender } from '@recast/core/callbacks';
import { createRedis, type Keys, type Logger, type RedisTarget } from '@recast/core/infra';
import {
  createNotifyQueue,
  type JobStore,
  NOTIFY_QUEUE,
  type NotifyPayload,
  type NotifyQueue,
} from '@recast/core/model';
import type { LookupFn, UrlPolicy } from '@recast/core/net';
import { queueTelemetry } from '@recast/core/telemetry';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { createNotifyProcessor } from './processor.js';

export { createNotifyProcessor, type NotifyDeps } from './processor.js';

/** Either a worker-role connection to share (the caller closes it) or a target to open one (closed here). */
type RedisSource =
  | { connection: Redis; redisTarget?: never }
  | { redisTarget: RedisTarget | string; connection?: never };

export type StartNotifyWorkerOptions = RedisSource & {
  keys: Keys;
  store: JobStore;
  /** A batch as users see it, for batch callbacks (see loadBatchView). */
  batchView: (batchId: string) => Promise<BatchView | undefined>;
  logger: Logger;
  /** CALLBACK_SECRETS: every current signing secret, `whsec_<base64>` or ≥ 16 raw characters. */
  secrets: readonly string[];
  /** Callback URLs get the same SSRF policy as media URLs. */
  urlPolicy: UrlPolicy;
  /** CALLBACK_TIMEOUT_MS: one attempt's deadline. */
  timeoutMs: number;
  /** NOTIFY_CONCURRENCY: callbacks in flight per process. */
  concurrency: number;
  /** Resolver for the SSRF checks; defaults to the shared cached `dns.lookup`. */
  lookup?: LookupFn;
};

export interface RunningNotifyWorker {
  worker: Worker<NotifyPayload>;
  /** The notify queue on the same connection, for producers in this process. */
  queue: NotifyQueue;
  close(): Promise<void>;
}

/** Start the `notify` worker: signed job and batch callbacks (see docs/callbacks.md). */
export async function startNotifyWorker(options: StartNotifyWorkerOptions): Promise<RunningNotifyWorker> {
  const { logger, keys } = options;
  // Throws on an empty or malformed secret list before anything is opened.
  const sender = createCallbackSender({
    secrets: options.secrets,
    policy: options.urlPolicy,
    timeoutMs: options.timeoutMs,
    ...(options.lookup ? { lookup: options.lookup } : {}),
  });
  const owned =
    options.connection === undefined
      ? createRedis({ target: options.redisTarget, role: 'worker', logger, name: 'recast-notify' })
      : undefined;
  const connection = options.connection ?? owned!;
  const queue = createNotifyQueue(connection, keys);
  const worker = new Worker<NotifyPayload>(
    NOTIFY_QUEUE,
    createNotifyProcessor({ store: options.store, batchView: options.batchView, sender, logger }),
    {
      connection,
      prefix: keys.bullPrefix,
      concurrency: options.concurrency,
      autorun: false,
      ...queueTelemetry(),
    },
  );
  worker.on('error', (err) => logger.error({ err: err.message, queue: NOTIFY_QUEUE }, 'worker error'));
  void worker.run();
  await worker.waitUntilReady();

  return {
    worker,
    queue,
    async close() {
      // Let in-flight deliveries finish, then drop sockets and the connection we opened.
      await worker.close();
      await queue.close();
      await sender.close();
      if (owned) await owned.quit().catch(() => owned.disconnect());
    },
  };
}
