import { AppError } from '../errors/app-error.js';
import type { Logger } from '../infra/logger.js';
import type { RecastMetrics } from '../metrics/metrics.js';
import type { JobRecord } from '../model/record.js';
import type { InferenceClient } from '../provider/inference-client.js';
import type { RateLimitBackoff } from '../provider/rate-limit.js';
import type { Services } from './services.js';

/** What the steps that call the provider need: only worker processes have it. */
export interface ProviderBinding {
  client: InferenceClient;
  /** Where the provider reaches this deployment's webhook receiver (the API's public base URL). */
  publicUrl: string;
  /** After a 429 that named no wait: exponential backoff with jitter, one per queue of steps. */
  dispatchBackoff: RateLimitBackoff;
  settleBackoff: RateLimitBackoff;
  /** When every in-flight slot is taken, look again after this long (a settle wakes it sooner). */
  inFlightPollMs: number;
  /** A settle that found the task not yet terminal looks again after this long, at most this often. */
  recheckMs: number;
  maxRechecks: number;
  orphans: OrphanSearchOptions;
  /**
   * Jobs looked at per pass; the next look at a task still going after a poll, at the latest
   * (againAfterMs) and at the soonest (floorMs: an overdue task is looked at as often as it is late).
   */
  reconcile: { maxPerPass: number; againAfterMs: number; floorMs: number };
}

export interface OrphanSearchOptions {
  /** After a lost answer's end (or the request timeout after its start) the provider has settled. */
  graceMs: number;
  /** The longest an unfiltered scan of the task list may take before it is retried. */
  timeoutMs: number;
  /** How long an abandoned attempt is watched for a task that lands late (see watch.ts). */
  watchMs: number;
  pageSize: number;
}

/** What every step of a job's life works with: the services, and the provider where there is one. */
export interface EngineContext extends Services {
  provider: ProviderBinding | undefined;
  /** Signed callbacks are on (CALLBACK_SECRETS): a finished job with a callback_url is told. */
  callbacks: boolean;
  /** Output retention (OUTPUT_STORE): tries per output; undefined when retention is off. */
  retention: { attempts: number } | undefined;
  metrics: RecastMetrics | undefined;
}

/** The provider binding, or a clear error where a process without one calls a provider step. */
export function providerOf(ctx: EngineContext): ProviderBinding {
  if (!ctx.provider) {
    throw new AppError('INTERNAL', 'this process has no provider binding: provider steps run on workers');
  }
  return ctx.provider;
}

/** A logger that names the job, its tenant and batch (and the task, when given). */
export function jobLogger(ctx: { logger: Logger }, record: JobRecord, taskId?: string): Logger {
  return ctx.logger.child({
    jobId: record.id,
    tenant: record.tenant,
    batchId: record.batch_id,
    ...(taskId ? { taskId } : {}),
  });
}

/**
 * How a step ends, for the queue that runs it: done (with what it came to), or a directive the
 * BullMQ adapter carries out. `pause` holds the whole queue on every worker (a closed provider
 * gate, a 429) without using up the step's attempts; `retry` fails this try (backoff, attempts);
 * `delay` puts this step back for a while without using up an attempt.
 */
export type StepOutcome<T> =
  | { kind: 'done'; result: T }
  | { kind: 'pause'; ms: number; reason: string }
  | { kind: 'retry'; error: Error }
  | { kind: 'delay'; ms: number; reason: string };

export const done = <T>(result: T): StepOutcome<T> => ({ kind: 'done', result });
