import cliProgress from 'cli-progress';
import { etaText } from '../cli/eta.js';
import { usd } from '../cli/output.js';
import type { Context } from '../context.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { type Batch, doneOf, FINISHED_STATUSES } from '../schemas.js';
import { printBatch } from './show.js';

/** Consecutive failed polls tolerated (a restarting API, a proxy hiccup) before giving up. */
const MAX_POLL_FAILURES = 10;

export function isFinished(status: string): boolean {
  return (FINISHED_STATUSES as readonly string[]).includes(status);
}

export function outcome(batch: Batch): ExitCode {
  return batch.status === 'completed' ? EXIT.OK : EXIT.FINISHED_WITH_ERRORS;
}

export function getBatch(ctx: Context, id: string): Promise<Batch> {
  return ctx.client.api.getBatch(id);
}

/** `batch:bat_…|lifetime` → what a person calls it, with the batch's cap when that is the one. */
export function budgetName(blockedBy: string, batch: Batch): string {
  const [scope = '', window = ''] = blockedBy.split('|');
  if (scope.startsWith('batch:')) {
    const cap = batch.cost.max_cost_usd;
    return cap === null ? 'batch budget reached' : `batch cap ${usd(usdToMicro(cap))} reached`;
  }
  const period = window === 'lifetime' ? '' : `${window} `;
  if (scope.startsWith('tenant:')) return `tenant ${scope.slice('tenant:'.length)} ${period}budget reached`;
  return `${scope} ${period}budget reached`;
}

function usdToMicro(decimal: string): number {
  const [whole = '0', frac = ''] = decimal.split('.');
  return Number(whole) * 1_000_000 + Number(frac.padEnd(6, '0').slice(0, 6));
}

/**
 * What the batch is doing, in words: its status, and when rows wait for money, how many and for
 * which budget (read from one of them: `10 waiting for budget (batch cap $5.00 reached)`).
 */
export async function describeProgress(ctx: Context, batch: Batch): Promise<string> {
  const waiting = batch.counts.waiting_budget ?? 0;
  if (waiting === 0) return batch.status;
  const { api } = ctx.client;
  const page = await api
    .send(
      api.api.GET('/v1/batches/{id}/jobs', {
        params: { path: { id: batch.id }, query: { state: 'waiting_budget', limit: 1 } },
      }),
    )
    .catch(() => undefined);
  const blockedBy = page?.data.find((job) => job.budget?.blocked_by)?.budget?.blocked_by;
  const why = blockedBy ? ` (${budgetName(blockedBy, batch)})` : '';
  return `${batch.status}, ${waiting} waiting for budget${why}`;
}

/**
 * Poll a batch until it is completed, completed_with_errors, cancelled or expired, with a progress bar on
 * a terminal (a line per change otherwise). The exit code is the outcome: 0 only if every row
 * completed. Ctrl-C stops watching, not the batch.
 */
export async function watchBatch(ctx: Context, id: string): Promise<number> {
  const bar = ctx.out.interactive
    ? new cliProgress.SingleBar(
        {
          stream: ctx.out.streams.stderr,
          format:
            ' {bar} {percentage}% | {value}/{total} done | {status} | spent {spent} / est. {estimated} | {eta}',
          hideCursor: true,
          clearOnComplete: false,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let started = false;
  let last = '';
  try {
    // Polled with If-None-Match: an unchanged batch costs the API no read and redraws nothing.
    const batch = await ctx.client.api.waitForBatch(id, {
      intervalMs: ctx.pollMs,
      maxFailures: MAX_POLL_FAILURES,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      onRetry: (err) => ctx.out.note(`(poll failed, retrying: ${err.message})`),
      onUpdate: async (batch) => {
        const payload = {
          status: await describeProgress(ctx, batch),
          spent: usd(batch.cost.spent_micro_usd),
          estimated: usd(batch.cost.estimated_micro_usd),
          eta: etaText(batch.eta) || '-',
        };
        if (bar) {
          if (!started) bar.start(batch.rows.total, doneOf(batch), payload);
          else bar.update(doneOf(batch), payload);
          started = true;
        } else {
          const line = `${payload.status}: ${doneOf(batch)}/${batch.rows.total} done, spent ${payload.spent} / est. ${payload.estimated}${batch.eta ? `, ${etaText(batch.eta)}` : ''}`;
          if (line !== last) ctx.out.note(line);
          last = line;
        }
      },
    });
    bar?.stop();
    if (ctx.config.json) ctx.out.data(batch);
    else printBatch(ctx, batch);
    return outcome(batch);
  } catch (err) {
    if (ctx.signal?.aborted) return interrupted(ctx, id, bar);
    throw err;
  } finally {
    bar?.stop();
  }
}

function interrupted(ctx: Context, id: string, bar: cliProgress.SingleBar | undefined): number {
  bar?.stop();
  ctx.out.note(`stopped watching; batch ${id} goes on (recast status ${id} --watch to resume)`);
  return EXIT.INTERRUPTED;
}
