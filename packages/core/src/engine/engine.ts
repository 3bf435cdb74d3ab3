import { type BatchCancelTally, cancelBatch } from '../batches/cancel.js';
import { retryBatch } from '../batches/retry.js';
import { type BatchView, loadBatchView } from '../batches/view.js';
import { enqueueBatchCallback, enqueueJobCallback } from '../callbacks/notify.js';
import { isAppError } from '../errors/app-error.js';
import { type CancelResult, cancelJob } from '../intake/cancel.js';
import { type SubmitDeps, type SubmitRequest, type SubmitResult, submitJob } from '../intake/submit.js';
import type { RecastMetrics } from '../metrics/metrics.js';
import type { SettlePayload } from '../model/catalog.js';
import type { JobRecord } from '../model/record.js';
import { InferenceError } from '../provider/inference-error.js';
import type { RateLimitBackoff } from '../provider/rate-limit.js';
import {
  currentTraceparent,
  inJobSpan,
  jobAttributes,
  SpanKind,
  tracingActive,
} from '../telemetry/tracing.js';
import { auditRecentBooks } from './books.js';
import { type CancelStepResult, cancelAtProvider } from './cancel.js';
import type { EngineContext, ProviderBinding, StepOutcome } from './context.js';
import { type DispatchResult, type DispatchStep, dispatch } from './dispatch.js';
import * as maintenance from './maintenance.js';
import { type ReconcilePass, reconcile } from './reconcile.js';
import type { Services } from './services.js';
import { type SettleResult, settle } from './settle.js';
import { notifyTerminal } from './terminal.js';
import { type WatchResult, watchAttempt } from './watch.js';
import { acceptWebhook, type WebhookHint } from './webhooks.js';

/** What only the API's intake needs: the estimator, the URL policy, the schema limits, uploads. */
export type IntakeOptions = Omit<SubmitDeps, 'redis' | 'keys' | 'store' | 'creator' | 'prices'>;

export interface EngineOptions {
  /** The provider binding: worker processes run the steps that call the provider. */
  provider?: ProviderBinding;
  /** Job submission (the API): without it, submit() is refused. */
  intake?: IntakeOptions;
  /** Signed callbacks are on (CALLBACK_SECRETS). */
  callbacks: boolean;
  /** Output retention: tries per output (OUTPUT_DOWNLOAD_ATTEMPTS); undefined when off. */
  retention?: { attempts: number };
  metrics?: RecastMetrics;
}

/**
 * The one owner of a job's life, over one set of services (see services.ts): submit and cancel
 * (the API), dispatch, settle, the provider cancel, reconcile and orphan adoption (the workers),
 * and the maintenance duties. The apps are adapters: a route parses and calls one method; a
 * BullMQ processor parses its payload, calls one step and carries out its StepOutcome.
 *
 * What a user or the provider is told about is acknowledged only once replicated (services'
 * `durable`, REDIS_WAIT_REPLICAS): a job accepted, a cancel, a batch cancel or retry, a webhook
 * accepted, a settle (its terminal transition and its charge), the provider cancel and the watch
 * (their charges), and inside dispatch the submit claim, before the POST. When the wait fails the
 * API's caller gets a retryable error (503) and a worker's step is put back for a while (a delay,
 * not a used-up attempt); each of these steps is idempotent when run again. The
 * maintenance duties and reconcile need no wait: what they write is redone by their next pass.
 */
export class Engine {
  private readonly ctx: EngineContext;

  constructor(
    readonly services: Services,
    private readonly options: EngineOptions,
  ) {
    this.ctx = {
      ...services,
      provider: options.provider,
      callbacks: options.callbacks,
      retention: options.retention,
      metrics: options.metrics,
    };
  }

  /** Validate, estimate, write and line up a job (nothing is written when it is refused). */
  submit(request: SubmitRequest): Promise<SubmitResult> {
    const intake = this.options.intake;
    if (!intake) throw new Error('this engine has no intake options: jobs are submitted through the API');
    const { redis, keys, store, creator, prices } = this.services;
    const deps = { ...intake, redis, keys, store, creator, prices };
    if (!tracingActive()) return this.services.durable(() => submitJob(deps, request));
    return inJobSpan('recast.submit', { tenant: request.tenant }, async (span) => {
      const traceparent = currentTraceparent();
      const result = await this.services.durable(() =>
        submitJob(deps, { ...request, ...(traceparent ? { traceparent } : {}) }),
      );
      span.setAttributes(jobAttributes({ jobId: result.job.id, batchId: result.job.batch_id }));
      span.setAttribute('recast.created', result.created);
      return result;
    });
  }

  /**
   * Run a step of a job in its span, in the trace the job keeps (see telemetry/); a job that has
   * none yet (a manifest's row) keeps this step's, so the rest of its attempt joins it.
   */
  private async traced<T>(name: string, jobId: string, kind: SpanKind, step: () => Promise<T>): Promise<T> {
    if (!tracingActive()) return step();
    const kept = await this.services.store.traceOf(jobId).catch(() => ({}) as { traceparent?: string });
    return inJobSpan(name, { jobId, ...kept, kind }, async () => {
      const traceparent = currentTraceparent();
      if (!kept.traceparent && traceparent)
        await this.services.store.keepTrace(jobId, traceparent).catch(() => {});
      return step();
    });
  }

  /** Cancel a job: at once when not yet at the provider, else `cancelling` and a provider cancel step. */
  cancel(tenant: string, jobId: string): Promise<CancelResult> {
    return this.services.durable(() => cancelJob(this.cancelDeps(), tenant, jobId));
  }

  /**
   * Cancel every unfinished row of a batch. Each row cancelled at once gets its own callback; the
   * batch's one callback is sent here, once, if the batch is now finished (the rows at the provider
   * finish later, and their settles send it).
   */
  async cancelBatch(batchId: string, tenant: string): Promise<{ tally: BatchCancelTally; view: BatchView }> {
    return this.services.durable(() => this.cancelBatchNow(batchId, tenant));
  }

  private async cancelBatchNow(batchId: string, tenant: string) {
    const { notify } = this.services.queues;
    const tally = await cancelBatch(
      {
        ...this.cancelDeps(),
        batches: this.services.batches,
        onTerminal: async (job: JobRecord) => {
          if (this.ctx.callbacks) await enqueueJobCallback(notify, job);
        },
      },
      batchId,
      tenant,
    );
    const view = (await loadBatchView(this.services, batchId)) as BatchView;
    if (this.ctx.callbacks) await enqueueBatchCallback(notify, view);
    return { tally, view };
  }

  retryBatch(batchId: string, tenant: string, options: { includeCancelled: boolean }) {
    return this.services.durable(() => retryBatch(this.services, batchId, tenant, options));
  }

  private cancelDeps() {
    return {
      ...this.services,
      onMoneyFreed: () => this.services.parking.wake(),
      onTerminal: (job: { id: string }) => notifyTerminal(this.ctx, job.id),
    };
  }

  /** A provider webhook (its token checked by the caller): queue its settle. */
  acceptWebhook(hint: WebhookHint): Promise<void> {
    return this.traced('recast.webhook', hint.jobId, SpanKind.SERVER, () =>
      this.services.durable(() => acceptWebhook(this.ctx, hint)),
    );
  }

  dispatch(step: DispatchStep): Promise<StepOutcome<DispatchResult>> {
    // The submit claim is replicated inside the step (before the POST), not after it.
    return this.traced('recast.dispatch', step.jobId, SpanKind.CONSUMER, () =>
      this.replicated(() => this.readsLimited(() => dispatch(this.ctx, step)), false),
    );
  }

  settle(payload: SettlePayload): Promise<StepOutcome<SettleResult>> {
    return this.traced('recast.settle', payload.jobId, SpanKind.CONSUMER, () =>
      this.replicated(() => this.throttled(() => settle(this.ctx, payload))),
    );
  }

  cancelAtProvider(payload: unknown): Promise<StepOutcome<CancelStepResult>> {
    return this.replicated(() => this.throttled(() => cancelAtProvider(this.ctx, payload)));
  }

  /** `job.watch`: look for a late task of an abandoned attempt, and stop it. */
  watchAttempt(payload: unknown): Promise<StepOutcome<WatchResult>> {
    return this.replicated(() => this.throttled(() => watchAttempt(this.ctx, payload)));
  }

  reconcile(): Promise<ReconcilePass> {
    return reconcile(this.ctx);
  }

  /**
   * Redis is reachable again after an outage: the provider's webhooks refused meanwhile (503) are
   * not sent again, so every job waiting on the provider is looked at now rather than after its
   * RECONCILE_AFTER_MS. Idempotent: every process that saw the outage may call it.
   */
  async afterRedisOutage(): Promise<number> {
    const due = await this.ctx.store.reconcileAllNow();
    this.ctx.logger.warn({ jobs: due }, 'Redis is back: every job waiting on the provider is looked at now');
    return due;
  }

  /** Check the books against the provider's task list over the last `windowMs` (see books.ts). */
  audit(windowMs: number) {
    return auditRecentBooks(this.ctx, windowMs);
  }

  feed(): Promise<void> {
    return maintenance.feed(this.ctx);
  }

  unpark(force = false): Promise<number> {
    return maintenance.unpark(this.ctx, force);
  }

  sweepInFlight(olderThanMs: number): Promise<number> {
    return maintenance.sweepInFlight(this.ctx, olderThanMs);
  }

  sweepBatches(abandonedUploadMs: number): Promise<void> {
    return maintenance.sweepBatches(this.ctx, abandonedUploadMs);
  }

  /** Rows still in line when their batch's completion_window closed end `expired`. */
  expireBatches(): Promise<number> {
    return maintenance.expireBatches(this.ctx);
  }

  sweepMoney(olderThanMs: number): Promise<number> {
    return maintenance.sweepMoney(this.ctx, olderThanMs);
  }

  recoverDispatches(): Promise<number> {
    return maintenance.recoverDispatches(this.ctx);
  }

  /**
   * A worker's step whose writes must be replicated (`wait`: after the step; else the step waits
   * inside, as dispatch does for its claim). Not replicated in time: the step is put back for a
   * while without using up an attempt (the replica is slow or gone, not the step at fault), and
   * runs again; every step is idempotent, so what it already wrote is found, not doubled.
   */
  private async replicated<T>(step: () => Promise<StepOutcome<T>>, wait = true): Promise<StepOutcome<T>> {
    try {
      return await (wait ? this.services.durable(step) : step());
    } catch (err) {
      if (!isAppError(err) || err.code !== 'REDIS_NOT_REPLICATED') throw err;
      return { kind: 'delay', ms: 1_000, reason: err.message };
    }
  }

  /**
   * A read of a dispatch (an orphan search) refused by the reads quota or a 429: the step is put
   * back until there is room, without using up an attempt (a submit's own 429 is handled inside).
   */
  private async readsLimited<T>(step: () => Promise<StepOutcome<T>>): Promise<StepOutcome<T>> {
    try {
      return await step();
    } catch (err) {
      if (!(err instanceof InferenceError) || err.code !== 'PROVIDER_RATE_LIMITED') throw err;
      return { kind: 'delay', ms: err.retryAfterMs ?? 1_000, reason: err.message };
    }
  }

  /**
   * A 429 from the provider while settling or cancelling holds the settle queue on every worker
   * for as long as the provider asked, and does not use up the step's attempts (as on dispatch).
   */
  private async throttled<T>(step: () => Promise<StepOutcome<T>>): Promise<StepOutcome<T>> {
    const backoff: RateLimitBackoff | undefined = this.ctx.provider?.settleBackoff;
    try {
      const outcome = await step();
      backoff?.reset();
      return outcome;
    } catch (err) {
      if (!(err instanceof InferenceError) || err.code !== 'PROVIDER_RATE_LIMITED' || !backoff) throw err;
      return { kind: 'pause', ms: err.retryAfterMs ?? backoff.next(), reason: 'provider 429 while settling' };
    }
  }
}
