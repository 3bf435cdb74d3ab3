import { Counter, Histogram, type Registry } from 'prom-client';
import type { ProviderResponse } from '../provider/inference-client.js';

/** Short steps: one Redis script or one provider call, up to a provider that is timing out. */
const STEP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** From a job's creation to its submit: instant when idle, hours behind a budget or a backlog. */
const WAIT_BUCKETS = [0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600];

/**
 * The metrics Recast's code observes as it runs (the ones read from Redis at scrape time are in
 * collectors.ts). Labels are small closed sets: never a job, task or batch id.
 */
export interface RecastMetrics {
  readonly registry: Registry;
  /** One dispatch step; `outcome` = submitted | parked | refused | failed | skipped | deferred | retry | error. */
  readonly dispatchSeconds: Histogram<'outcome'>;
  /** One settle or cancel step; `outcome` = the job's state after it, skipped, or error. */
  readonly settleSeconds: Histogram<'step' | 'outcome'>;
  /** A job's creation to its first submit to the provider. */
  readonly queueToSubmitSeconds: Histogram;
  readonly providerResponses: Counter<'endpoint' | 'status'>;
  readonly providerSeconds: Histogram<'endpoint'>;
  /** Provider webhooks by what the receiver answered. */
  readonly webhooks: Counter<'outcome'>;
  /**
   * Second provider tasks for one job (another client, a provider bug, a crash window): `outcome`
   * = cancelled (stopped while live) | charged (billed: a `duplicate` ledger line) | unbilled.
   */
  readonly duplicateTasks: Counter<'outcome'>;
}

// One set of metric objects per registry: the API and a worker may share a registry in a test,
// and prom-client refuses a second metric of the same name.
const byRegistry = new WeakMap<Registry, RecastMetrics>();

/**
 * The metrics of a registry. Each is registered when first used, so a process exposes only what
 * it observes: the API its webhooks, a worker its steps and provider calls.
 */
export function createMetrics(registry: Registry): RecastMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const made = new Map<string, unknown>();
  const once = <T>(name: string, make: () => T): T => {
    if (!made.has(name)) made.set(name, make());
    return made.get(name) as T;
  };
  const metrics: RecastMetrics = {
    registry,
    get dispatchSeconds() {
      return once(
        'dispatch',
        () =>
          new Histogram({
            name: 'recast_dispatch_duration_seconds',
            help: 'Time of one dispatch step (reserve, gate, submit), by outcome.',
            labelNames: ['outcome'],
            buckets: STEP_BUCKETS,
            registers,
          }),
      );
    },
    get settleSeconds() {
      return once(
        'settle',
        () =>
          new Histogram({
            name: 'recast_settle_duration_seconds',
            help: "Time of one settle (or cancel) step, by the job's state after it.",
            labelNames: ['step', 'outcome'],
            buckets: STEP_BUCKETS,
            registers,
          }),
      );
    },
    get queueToSubmitSeconds() {
      return once(
        'queueToSubmit',
        () =>
          new Histogram({
            name: 'recast_queue_to_submit_seconds',
            help: 'From a job being accepted to its first submit to the provider.',
            buckets: WAIT_BUCKETS,
            registers,
          }),
      );
    },
    get providerResponses() {
      return once(
        'providerResponses',
        () =>
          new Counter({
            name: 'recast_provider_responses_total',
            help: 'Provider calls by endpoint and HTTP status (timeout / network when there was no answer).',
            labelNames: ['endpoint', 'status'],
            registers,
          }),
      );
    },
    get providerSeconds() {
      return once(
        'providerSeconds',
        () =>
          new Histogram({
            name: 'recast_provider_request_duration_seconds',
            help: 'Time of one provider call, answered or not.',
            labelNames: ['endpoint'],
            buckets: STEP_BUCKETS,
            registers,
          }),
      );
    },
    get webhooks() {
      return once(
        'webhooks',
        () =>
          new Counter({
            name: 'recast_webhooks_total',
            help: 'Provider webhooks received, by outcome.',
            labelNames: ['outcome'],
            registers,
          }),
      );
    },
    get duplicateTasks() {
      return once(
        'duplicates',
        () =>
          new Counter({
            name: 'recast_duplicate_tasks_total',
            help: 'Second provider tasks found for a job, by what was done: cancelled, charged (a duplicate line) or unbilled.',
            labelNames: ['outcome'],
            registers,
          }),
      );
    },
  };
  byRegistry.set(registry, metrics);
  return metrics;
}

/** The inference client's `onResponse` hook, feeding the provider counters. */
export function providerResponseObserver(metrics: RecastMetrics): (response: ProviderResponse) => void {
  const { providerResponses, providerSeconds } = metrics;
  return ({ endpoint, status, ms }) => {
    providerResponses.inc({ endpoint, status: String(status) });
    providerSeconds.observe({ endpoint }, ms / 1000);
  };
}

/** What the webhook receiver's answer means, from its status code (see routes/webhooks). */
export function webhookOutcome(statusCode: number): string {
  switch (statusCode) {
    case 202:
      return 'accepted';
    case 400:
      return 'malformed';
    case 401:
      return 'bad_token';
    case 404:
      return 'unknown_job';
    case 413:
      return 'too_large';
    case 415:
      return 'unsupported_media_type';
    default:
      return statusCode >= 500 ? 'error' : 'other';
  }
}

/**
 * Wrap a step so its duration lands in `histogram` under the outcome `outcomeOf` reads from its
 * result or error. The step's result and error pass through unchanged.
 */
export function timeStep<A extends unknown[], R, L extends string>(
  histogram: Histogram<L>,
  labels: (outcome: { result: R } | { error: unknown }) => Partial<Record<L, string>>,
  step: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return async (...args: A) => {
    const end = histogram.startTimer();
    try {
      const result = await step(...args);
      end(labels({ result }));
      return result;
    } catch (error) {
      end(labels({ error }));
      throw error;
    }
  };
}
