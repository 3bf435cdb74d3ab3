import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { etaText } from '../cli/eta.js';
import { usd } from '../cli/output.js';
import type { Context } from '../context.js';
import { ApiError, EXIT, RowsError, UsageError } from '../exit-codes.js';
import type { Limits, BatchQuote as Quote, RowError } from '../schemas.js';
import { rewriteCsv, scanCsvLocalPaths } from '../uploads/csv-paths.js';
import { checkLocalPaths } from '../uploads/local-paths.js';
import { type LocalRefs, rewriteManifest, scanLocalPaths } from '../uploads/manifest-paths.js';
import { uploadLocalFiles } from '../uploads/upload-files.js';
import { watchBatch } from './watch.js';

export interface SubmitOptions {
  dryRun?: boolean;
  watch?: boolean;
  name?: string;
  mode?: 'atomic' | 'partial';
  maxCostUsd?: string;
  defaults?: string;
  callbackUrl?: string;
  metadata?: string;
  format?: 'jsonl' | 'csv';
  /** Directories besides the manifest's own whose files the manifest may name (--allow-path). */
  allowPath?: string[];
}

const CONTENT_TYPES = { jsonl: 'application/x-ndjson', csv: 'text/csv' } as const;
const EXTENSIONS: Record<string, keyof typeof CONTENT_TYPES> = {
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.csv': 'csv',
};

/** The manifest's content type: from --format, else from the file's extension. */
export function contentTypeOf(path: string, format?: 'jsonl' | 'csv'): string {
  const kind = format ?? EXTENSIONS[extname(path).toLowerCase()];
  if (!kind) {
    throw new UsageError(
      `cannot tell the format of ${path}: name it .jsonl, .ndjson or .csv, or pass --format`,
    );
  }
  return CONTENT_TYPES[kind];
}

/** What the deployment accepts; undefined for one without GET /v1/limits (it answers for itself). */
async function readLimits(ctx: Context): Promise<Limits | undefined> {
  const { api } = ctx.client;
  return api.send(api.api.GET('/v1/limits')).catch((err: unknown) => {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  });
}

/**
 * Refuse a manifest larger than the deployment takes before sending any of it (exit 7, as the
 * API's own 413). The API would refuse it too, but only while the upload is under way, and a
 * client still writing into a connection the server has closed can meet a reset before it reads
 * that answer. Rows and line lengths are checked the same way (preflight.ts).
 */
function refuseIfTooLarge(limits: Limits | undefined, manifest: string, size: number): void {
  const max = limits?.manifest.max_bytes;
  if (max !== undefined && size > max) {
    throw new ApiError(
      413,
      'PAYLOAD_TOO_LARGE',
      `${manifest} is ${size} bytes: over this deployment's MANIFEST_MAX_BYTES (${max} bytes); split it into several batches`,
    );
  }
}

/**
 * Before any byte is sent: the manifest read as the API will read it (limits, and with local
 * files every row's errors), and every local path checked (inside the manifest's directory or an
 * --allow-path, a readable file). A path the CLI will not read stops it with every such row listed
 * (exit 2); invalid rows stop an atomic submit (the API would refuse it after the uploads); a dry
 * run or a partial submit shows them and goes on. Nothing is uploaded or remembered before this.
 */
async function checkBeforeSending(
  ctx: Context,
  manifest: string,
  opts: SubmitOptions,
  input: { csv: boolean; baseDir: string; refs: LocalRefs | undefined; limits: Limits | undefined },
): Promise<void> {
  const { csv, baseDir, refs, limits } = input;
  const local = refs !== undefined && refs.size > 0;
  let rows: RowError[] = [];
  if (limits) {
    // Local paths stand in as URLs (they will be uploads), so the rows read as the API will see them.
    const stand = new Map(
      [...(refs?.keys() ?? [])].map((path, i) => [path, `https://local-file.recast.invalid/${i + 1}`]),
    );
    const source = !local
      ? createReadStream(manifest)
      : csv
        ? rewriteCsv(manifest, baseDir, stand)
        : rewriteManifest(manifest, baseDir, stand);
    // Loaded here, not at start: the parser and the job schema are only for a submit.
    const { preflight } = await import('../preflight.js');
    rows = await preflight(source, manifest, {
      format: csv ? 'csv' : 'jsonl',
      limits,
      ...(opts.defaults ? { defaults: JSON.parse(opts.defaults) as Record<string, unknown> } : {}),
    });
  }
  if (!local) return; // nothing is uploaded first: the API's own answer lists the bad rows
  const paths = await checkLocalPaths(refs, [baseDir, ...(opts.allowPath ?? []).map((dir) => resolve(dir))]);
  if (paths.length > 0) {
    const all = [...paths, ...rows].sort((a, b) => a.line - b.line);
    throw new RowsError(
      `${manifest} names local files this command will not read (${paths.length}); nothing was uploaded`,
      all,
      EXIT.USAGE,
    );
  }
  if (rows.length === 0) return;
  const lines = new Set(rows.map((r) => r.line)).size;
  if ((opts.mode ?? 'atomic') === 'atomic' && !opts.dryRun) {
    throw new RowsError(
      `${lines} rows of ${manifest} are invalid; nothing was uploaded or created`,
      rows,
      EXIT.VALIDATION,
    );
  }
  ctx.out.note(`${lines} invalid rows (before uploading anything):`);
  if (!ctx.config.json) ctx.out.rowErrors(rows, false, rows.length);
}

export async function submit(ctx: Context, manifest: string, opts: SubmitOptions): Promise<number> {
  const contentType = contentTypeOf(manifest, opts.format);
  const size = await stat(manifest).then(
    (s) => {
      if (!s.isFile()) throw new UsageError(`${manifest} is not a file`);
      return s.size;
    },
    (err: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read ${manifest}: ${err.code ?? err.message}`);
    },
  );
  const limits = await readLimits(ctx);
  refuseIfTooLarge(limits, manifest, size);
  let body: Readable | undefined;
  // The length is sent when the bytes are the file's own (the API can refuse an oversize one at once).
  let length: number | undefined = size;
  // Local files named in `video` / `images` are uploaded first (once per content, resumable),
  // and the rows sent with their uris instead.
  const baseDir = dirname(resolve(manifest));
  const csv = contentType === CONTENT_TYPES.csv;
  const refs = csv ? await scanCsvLocalPaths(manifest, baseDir) : await scanLocalPaths(manifest, baseDir);
  await checkBeforeSending(ctx, manifest, opts, { csv, baseDir, refs, limits });
  if (refs && refs.size > 0) {
    const uris = await uploadLocalFiles(ctx, manifest, refs);
    body = csv ? rewriteCsv(manifest, baseDir, uris) : rewriteManifest(manifest, baseDir, uris);
    length = undefined;
  }
  // Streamed from disk: a manifest of any size is never held in memory.
  body ??= createReadStream(manifest);
  const { api, longFetch } = ctx.client;
  const request = {
    format: csv ? ('csv' as const) : ('jsonl' as const),
    params: {
      ...(opts.name !== undefined ? { name: opts.name } : {}),
      ...(opts.mode !== undefined ? { mode: opts.mode } : {}),
      // A decimal string as typed: the API reads it exactly (and names it when it is not one).
      ...(opts.maxCostUsd !== undefined ? { max_cost_usd: opts.maxCostUsd as unknown as number } : {}),
      ...(opts.defaults !== undefined ? { defaults: opts.defaults } : {}),
      ...(opts.callbackUrl !== undefined ? { callback_url: opts.callbackUrl } : {}),
      ...(opts.metadata !== undefined ? { metadata: opts.metadata } : {}),
    },
    ...(length !== undefined ? { size: length } : {}),
    fetch: longFetch,
  };

  if (opts.dryRun) {
    const quote = await api.quoteManifest(body, request);
    if (ctx.config.json) ctx.out.data(quote);
    else printQuote(ctx, manifest, quote);
    // What a real submit would do: atomic refuses any bad row, partial needs one good row.
    const refused = quote.rows === 0 || (quote.invalid_rows > 0 && (opts.mode ?? 'atomic') === 'atomic');
    return refused ? EXIT.VALIDATION : EXIT.OK;
  }

  const batch = await api.submitManifest(body, request);
  const errors = batch.errors ?? [];
  if (errors.length > 0) {
    ctx.out.note(`${batch.rows.invalid} invalid rows skipped (partial mode):`);
    if (!ctx.config.json) ctx.out.rowErrors(errors, batch.errors_truncated === true, batch.rows.invalid);
  }
  if (opts.watch) {
    ctx.out.note(
      `batch ${batch.id} accepted: ${batch.rows.total} rows, estimated ${usd(batch.cost.estimated_micro_usd)}`,
    );
    return watchBatch(ctx, batch.id);
  }
  if (ctx.config.json) {
    ctx.out.data(batch);
  } else {
    ctx.out.line(batch.id);
    ctx.out.note(
      `accepted: ${batch.rows.total} rows, estimated ${usd(batch.cost.estimated_micro_usd)}` +
        ` (recast status ${batch.id} --watch to follow it)`,
    );
  }
  return EXIT.OK;
}

function printQuote(ctx: Context, manifest: string, quote: Quote): void {
  const { out } = ctx;
  out.line(`dry run of ${manifest}: nothing was created`);
  out.line(`rows      ${quote.rows} valid, ${quote.invalid_rows} invalid`);
  const sources = Object.entries(quote.estimate_sources).map(([s, n]) => `${s} ${n}`);
  out.line(`seconds   estimated from ${sources.join(', ') || '-'}`);
  if (quote.eta) out.line(`finish    if submitted now: ${etaText(quote.eta)}`);
  out.line('');
  const rows = Object.entries(quote.by_resolution)
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([res, r]) => [res, String(r.rows), r.seconds.toFixed(1), usd(r.micro_usd)]);
  const seconds = Object.values(quote.by_resolution).reduce((sum, r) => sum + r.seconds, 0);
  rows.push(['total', String(quote.rows), seconds.toFixed(1), usd(quote.estimated_micro_usd)]);
  out.table(['resolution', 'rows', 'seconds', 'estimated'], rows, [1, 2, 3]);
  if (quote.budgets && quote.budgets.checks.length > 0) {
    out.line('');
    out.table(
      ['budget', 'window', 'limit', 'available', 'fits'],
      quote.budgets.checks.map((c) => [
        c.scope,
        c.window,
        usd(c.limit_micro_usd),
        usd(c.available_micro_usd),
        c.fits ? 'yes' : 'NO',
      ]),
      [2, 3],
    );
    if (!quote.budgets.fits) out.note('the estimate does not fit every budget: rows would wait for money');
  }
  if (quote.invalid_rows > 0) {
    out.note(`${quote.invalid_rows} invalid rows:`);
    out.rowErrors(quote.errors, quote.errors_truncated, quote.invalid_rows);
  }
}
