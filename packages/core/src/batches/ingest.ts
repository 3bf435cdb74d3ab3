import { AppError } from '../errors/app-error.js';
import type { Eta } from '../forecast/eta.js';
import type { Forecaster } from '../forecast/forecaster.js';
import type { JobEstimator } from '../intake/submit.js';
import { assertInputUrls, assertUrlFields } from '../intake/url-checks.js';
import {
  type ManifestFormat,
  type ManifestLimits,
  type ManifestRow,
  type ManifestRowError,
  parseManifest,
  rowsRefused,
} from '../manifests/index.js';
import { newBatchId, newJobId } from '../model/ids.js';
import type { JobRecord } from '../model/record.js';
import { DEFAULT_JOB_SCHEMA_LIMITS, type JobSchemaLimits, splitJobRequest } from '../model/schema.js';
import type { Budgets } from '../money/budgets.js';
import { costOf, type PriceTable } from '../money/price-table.js';
import type { BudgetWindow } from '../money/scopes.js';
import type { UrlPolicy } from '../net/ssrf.js';
import type { FairQueue } from '../scheduling/fair-queue.js';
import type { BatchRecord, BatchStore } from './batch-store.js';
import { parseCompletionWindow } from './expire.js';

export interface IngestDeps {
  batches: BatchStore;
  fair: FairQueue;
  budgets: Budgets;
  estimator: JobEstimator;
  prices: PriceTable;
  limits?: JobSchemaLimits;
  /** Where a batch's `callback_url` may point (SSRF guard); refused when `callbacks` is false. */
  urlPolicy?: UrlPolicy;
  callbacks?: boolean;
  /** Estimates when a dry run's rows would be done if submitted now (quote.eta). */
  forecaster?: Pick<Forecaster, 'quote'>;
}

export interface BatchParams {
  tenant: string;
  name?: string;
  metadata?: Record<string, unknown>;
  defaults?: Record<string, unknown>;
  max_cost_micro_usd?: number;
  callback_url?: string;
  /** How long rows may wait to be sent (e.g. `24h`, see parseCompletionWindow); none by default. */
  completion_window?: string;
  mode: 'atomic' | 'partial';
  dry_run: boolean;
}

export interface Quote {
  rows: number;
  invalid_rows: number;
  errors: ManifestRowError[];
  errors_truncated: boolean;
  /** By resolution: rows, expected seconds and cost, and where the seconds came from. */
  by_resolution: Record<string, { rows: number; seconds: number; micro_usd: number }>;
  estimate_sources: Record<string, number>;
  estimated_micro_usd: number;
  /** Whether the estimate fits what the budgets it falls under have left now (see budgetFit). */
  budgets: { fits: boolean; checks: BudgetCheck[] };
  /** A dry run: when its rows would be done if submitted now, behind what is in line. */
  eta?: Eta | null;
}

export interface BudgetCheck {
  scope: string;
  window: BudgetWindow;
  limit_micro_usd: number;
  available_micro_usd: number;
  fits: boolean;
}

/**
 * Does an estimate fit the budgets a new batch of `tenant` would fall under: every global and
 * tenant limit as it stands now (its current period's reserved + spent taken off), and the batch's
 * own `max_cost_usd`. A batch that does not fit is still accepted; its rows park until money frees.
 */
export async function budgetFit(
  budgets: Budgets,
  tenant: string,
  estimatedMicroUsd: number,
  maxCostMicroUsd?: number,
): Promise<Quote['budgets']> {
  const limits = await budgets.list(
    new Date(),
    (scope) => scope === 'global' || scope === `tenant:${tenant}`,
  );
  const checks: BudgetCheck[] = limits.map((b) => ({
    scope: b.scope,
    window: b.window,
    limit_micro_usd: b.limit_micro_usd,
    available_micro_usd: b.available_micro_usd,
    fits: estimatedMicroUsd <= b.available_micro_usd,
  }));
  if (maxCostMicroUsd !== undefined) {
    checks.push({
      scope: 'batch',
      window: 'lifetime',
      limit_micro_usd: maxCostMicroUsd,
      available_micro_usd: maxCostMicroUsd,
      fits: estimatedMicroUsd <= maxCostMicroUsd,
    });
  }
  return { fits: checks.every((c) => c.fits), checks };
}

const CHUNK = 500;
/** Rows being checked at once (their probes are capped by the estimator's own concurrency). */
const ESTIMATE_WINDOW = 64;

type Checked =
  | {
      ok: true;
      line: number;
      custom_id: string | null;
      input: ReturnType<typeof splitJobRequest>['input'];
      recast: ReturnType<typeof splitJobRequest>['recast'];
      estimate: Awaited<ReturnType<JobEstimator['estimate']>>;
    }
  | { ok: false; error: ManifestRowError };

/**
 * What a single submit checks beyond the schema, for one manifest row: its callback URL (when
 * callbacks are on and the SSRF policy allows it), every input URL (SSRF), and its expected
 * seconds (a hint or a probe). A URL Recast may not fetch, or a video no one can read, is the
 * row's error, named by line, custom_id and field.
 */
async function checkRow(deps: IngestDeps, row: ManifestRow): Promise<Checked> {
  const { line, custom_id, request } = row;
  const { input, recast } = splitJobRequest(request);
  try {
    if (recast.callback_url !== undefined) {
      if (!deps.callbacks) {
        throw new AppError('VALIDATION_FAILED', 'callbacks are not enabled on this deployment', {
          statusCode: 400,
          issues: [{ path: 'callback_url', message: 'callbacks are not enabled (no CALLBACK_SECRETS)' }],
        });
      }
      await assertUrlFields([['callback_url', recast.callback_url]], deps.urlPolicy ?? { allowHosts: [] });
    }
    // Hint or not, every URL goes to the provider: checked like one Recast fetches (no fetch).
    await assertInputUrls(input, deps.urlPolicy ?? { allowHosts: [] });
    const estimate = await deps.estimator.estimate({
      video: input.video,
      ...(recast.duration_seconds !== undefined ? { duration_seconds: recast.duration_seconds } : {}),
    });
    return { ok: true, line, custom_id, input, recast, estimate };
  } catch (err) {
    if (!(err instanceof AppError) || err.statusCode !== 400) throw err;
    const issues = err.issues ?? [{ path: '(row)', message: err.message }];
    const first = issues[0] ?? { path: '(row)', message: err.message };
    return { ok: false, error: { line, custom_id, path: first.path, message: first.message, issues } };
  }
}

/**
 * Read a manifest as a stream and turn it into a batch: every row validated (errors carry line,
 * custom_id and field), estimated (hint or probe), and written in chunks as an invisible staged
 * batch; then committed (visible, counts matching its jobs) and lined up for dispatch. Atomic mode:
 * any bad row discards everything (422). Partial mode: bad rows are reported and counted, good
 * ones run. Dry run: the same validation and quote, nothing written.
 * A crash mid-upload leaves a staged batch nobody sees (a janitor removes it); a crash after the
 * commit leaves a visible batch whose jobs are lined up by whoever resumes `lineUp`.
 */
export async function ingestBatch(
  deps: IngestDeps,
  params: BatchParams,
  source: AsyncIterable<Buffer | string>,
  format: ManifestFormat,
  limits: ManifestLimits,
): Promise<{ batchId?: string; quote: Quote }> {
  const now = new Date();
  const batchId = newBatchId(now.getTime());
  const quote: Quote = {
    rows: 0,
    invalid_rows: 0,
    errors: [],
    errors_truncated: false,
    by_resolution: {},
    estimate_sources: {},
    estimated_micro_usd: 0,
    budgets: { fits: true, checks: [] },
  };
  if (params.callback_url !== undefined) {
    // Checked before anything is read or written: a refused URL is a 400 that creates nothing.
    if (!deps.callbacks) {
      throw new AppError('VALIDATION_FAILED', 'callback_url: callbacks are not enabled on this deployment', {
        statusCode: 400,
        issues: [{ path: 'callback_url', message: 'callbacks are not enabled (no CALLBACK_SECRETS)' }],
      });
    }
    await assertUrlFields([['callback_url', params.callback_url]], deps.urlPolicy ?? { allowHosts: [] });
  }
  // Read before anything is written: a bad window is a 400 that creates nothing.
  const expiresAt =
    params.completion_window === undefined
      ? undefined
      : new Date(now.getTime() + parseCompletionWindow(params.completion_window)).toISOString();
  const staging = !params.dry_run;
  let writing = staging;
  if (staging) {
    const batch: BatchRecord = {
      id: batchId,
      tenant: params.tenant,
      mode: params.mode,
      stored_status: 'validating',
      total: 0,
      invalid_rows: 0,
      estimated_micro_usd: 0,
      estimated_ms: {},
      created_at: now.toISOString(),
      ...(params.name ? { name: params.name } : {}),
      ...(params.metadata ? { metadata: params.metadata } : {}),
      ...(params.callback_url ? { callback_url: params.callback_url } : {}),
      ...(params.max_cost_micro_usd !== undefined ? { max_cost_micro_usd: params.max_cost_micro_usd } : {}),
      ...(expiresAt ? { completion_window: params.completion_window, expires_at: expiresAt } : {}),
    };
    await deps.batches.stage(batch);
  }
  let buffer: JobRecord[] = [];
  const reject = (error: ManifestRowError) => {
    quote.invalid_rows++;
    if (quote.errors.length < limits.maxErrors) quote.errors.push(error);
    else quote.errors_truncated = true;
    // Atomic: nothing more is worth writing, but keep reading to report every bad row.
    if (params.mode === 'atomic') writing = false;
  };
  const accept = async (row: Checked) => {
    if (!row.ok) return reject(row.error);
    const { line, custom_id, input, recast, estimate } = row;
    const cost = costOf(deps.prices, input.resolution, estimate.seconds);
    quote.rows++;
    const r = quote.by_resolution[input.resolution] ?? { rows: 0, seconds: 0, micro_usd: 0 };
    quote.by_resolution[input.resolution] = r;
    r.rows++;
    r.seconds = (Math.round(r.seconds * 1000) + cost.ms) / 1000;
    r.micro_usd += cost.microUsd;
    quote.estimated_micro_usd += cost.microUsd;
    quote.estimate_sources[estimate.source] = (quote.estimate_sources[estimate.source] ?? 0) + 1;
    if (!writing) return;
    const at = new Date().toISOString();
    buffer.push({
      id: newJobId(),
      tenant: params.tenant,
      state: 'queued',
      version: 1,
      created_at: at,
      updated_at: at,
      input,
      ...recast,
      batch_id: batchId,
      line,
      ...(expiresAt ? { expires_at: expiresAt } : {}),
      ...(custom_id !== null ? { custom_id } : {}),
      attempt: 0,
      estimate_seconds: estimate.seconds,
      estimate_source: estimate.source,
      estimate_micro_usd: cost.microUsd,
      ...(estimate.probe_error ? { estimate_probe_error: estimate.probe_error } : {}),
    });
    if (buffer.length >= CHUNK) {
      await deps.batches.addJobs(batchId, buffer);
      buffer = [];
    }
  };
  // Rows are checked (URLs, probes) a window at a time, so rows without a duration are probed
  // concurrently (the estimator caps the probes in flight); results are taken in file order.
  const window: Promise<Checked>[] = [];
  try {
    for await (const item of parseManifest(source, {
      format,
      limits,
      schemaLimits: deps.limits ?? DEFAULT_JOB_SCHEMA_LIMITS,
      ...(params.defaults ? { defaults: params.defaults } : {}),
    })) {
      window.push(item.ok ? checkRow(deps, item.row) : Promise.resolve({ ok: false, error: item.error }));
      if (window.length >= ESTIMATE_WINDOW) await accept(await window.shift()!);
    }
    while (window.length > 0) await accept(await window.shift()!);
    if (!staging) {
      quote.budgets = await budgetFit(
        deps.budgets,
        params.tenant,
        quote.estimated_micro_usd,
        params.max_cost_micro_usd,
      );
      quote.eta = deps.forecaster
        ? await deps.forecaster.quote(
            params.tenant,
            quote.rows,
            Object.fromEntries(Object.entries(quote.by_resolution).map(([r, v]) => [r, v.seconds])),
          )
        : null;
      return { quote };
    }
    if (params.mode === 'atomic' && quote.invalid_rows > 0) {
      throw rowsRefused(`${quote.invalid_rows} manifest rows are invalid; nothing was created`, quote);
    }
    if (quote.rows === 0) throw rowsRefused('the manifest has no valid rows; nothing was created', quote);
    await deps.batches.addJobs(batchId, buffer);
    buffer = [];
  } catch (err) {
    // Checks still in flight when the manifest was refused: their outcome no longer matters.
    for (const pending of window.splice(0)) pending.catch(() => {});
    if (staging) await deps.batches.discard(batchId);
    throw err;
  }
  if (params.max_cost_micro_usd !== undefined) {
    await deps.budgets.setLimit(`batch:${batchId}`, 'lifetime', params.max_cost_micro_usd);
  }
  await deps.batches.commit(batchId, params.tenant, {
    total: quote.rows,
    invalid_rows: quote.invalid_rows,
    estimated_micro_usd: quote.estimated_micro_usd,
    estimated_ms: Object.fromEntries(
      Object.entries(quote.by_resolution).map(([res, v]) => [res, Math.round(v.seconds * 1000)]),
    ),
  });
  await deps.batches.lineUp(batchId, deps.fair);
  return { batchId, quote };
}
