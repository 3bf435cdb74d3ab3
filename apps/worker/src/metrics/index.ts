import { createRedis, type Keys, type Logger, type RedisTarget, waitForRedis } from '@recast/core/infra';
import {
  createMetrics,
  type RecastMetrics,
  type Registry,
  registerClusterCollectors,
  timeStep,
} from '@recast/core/metrics';
import { createNotifyQueue, createQueues } from '@recast/core/model';
import { InferenceError, type ProviderLimits } from '@recast/core/provider';
import { DelayedError, type Job, RateLimitError } from 'bullmq';

export { type MetricsServer, type MetricsServerOptions, startMetricsServer } from './server.js';

export interface WorkerMetricsOptions {
  registry: Registry;
  redisTarget: RedisTarget | string;
  keys: Keys;
  logger: Logger;
  providerLimits: ProviderLimits;
  /** Report the notify queue too (callbacks are on). */
  notify: boolean;
}

type Step = (job: Job, token?: string) => Promise<unknown>;

export interface WorkerMetrics {
  metrics: RecastMetrics;
  /** The processors, timed into the dispatch and settle histograms. */
  timeDispatch(step: Step): Step;
  timeSettle(step: Step): Step;
  timeCancel(step: Step): Step;
  close(): Promise<void>;
}

type Ended = { result: unknown } | { error: unknown };

/** What a dispatch step came to (see DispatchResult in the engine's dispatch). */
export function dispatchOutcome(ended: Ended): string {
  if ('error' in ended) {
    // The gate was closed or the provider answered 429 (the job went back in line, unharmed), or
    // the step waits for an earlier submit to land before it looks for its task.
    if (ended.error instanceof RateLimitError || ended.error instanceof DelayedError) return 'deferred';
    if (ended.error instanceof InferenceError && ended.error.retryable) return 'retry';
    return 'error';
  }
  const result = (ended.result ?? {}) as Record<string, unknown>;
  if ('taskId' in result) return 'submitted';
  if ('parked' in result) return 'parked';
  if ('failed' in result) return result.failed === 'BUDGET_EXCEEDED' ? 'refused' : 'failed';
  return 'skipped';
}

/** What a settle or cancel step came to: the job's state after it, where the step says. */
export function settleOutcome(ended: Ended): string {
  if ('error' in ended) return ended.error instanceof RateLimitError ? 'deferred' : 'error';
  const result = (ended.result ?? {}) as Record<string, unknown>;
  if (result.retried === true) return 'retried';
  if (typeof result.state === 'string') return result.state;
  if ('skipped' in result) return 'skipped';
  if ('duplicate' in result) return 'duplicate';
  if ('cancelled' in result) return 'cancel_sent';
  if ('waiting' in result) return 'waiting';
  return 'done';
}

/**
 * A worker's metrics: the step histograms, and the deployment-wide gauges read from Redis at
 * scrape time on a connection of their own. That one fails fast (a producer connection), so a
 * scrape while Redis is down answers at once with the last values instead of piling up commands.
 */
export async function startWorkerMetrics(options: WorkerMetricsOptions): Promise<WorkerMetrics> {
  const { registry, logger, keys } = options;
  const metrics = createMetrics(registry);
  const redis = createRedis({
    target: options.redisTarget,
    role: 'producer',
    logger,
    name: 'recast-worker-metrics',
  });
  await waitForRedis(redis).catch((err: Error) =>
    logger.warn({ err: err.message }, 'Redis not reachable for metrics at start'),
  );
  const queues = createQueues(redis, keys);
  const notify = options.notify ? createNotifyQueue(redis, keys) : undefined;
  // The connection logs its errors (at most one a second); a queue without a listener would
  // print each one again on the console.
  for (const queue of [queues.dispatch, queues.settle, notify]) queue?.on('error', () => undefined);
  registerClusterCollectors(registry, {
    redis,
    keys,
    queues,
    notify,
    providerLimits: options.providerLimits,
    logger,
  });
  return {
    metrics,
    timeDispatch: (step) =>
      timeStep(metrics.dispatchSeconds, (ended) => ({ outcome: dispatchOutcome(ended) }), step),
    timeSettle: (step) =>
      timeStep(metrics.settleSeconds, (ended) => ({ step: 'settle', outcome: settleOutcome(ended) }), step),
    timeCancel: (step) =>
      timeStep(metrics.settleSeconds, (ended) => ({ step: 'cancel', outcome: settleOutcome(ended) }), step),
    async close() {
      await Promise.all([queues.close(), notify?.close()]);
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
