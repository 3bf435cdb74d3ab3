import type { Writable } from 'node:stream';
import { ApiError, exitCodeFor, RowsError } from '../exit-codes.js';
import type { RowError } from '../schemas.js';

export interface Streams {
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean };
}

/**
 * Everything the CLI prints goes through here: results and data on stdout (one JSON document
 * with --json), notes, progress and errors on stderr, so `recast … > file` keeps only the data.
 */
export class Output {
  constructor(
    readonly streams: Streams,
    readonly json: boolean,
  ) {}

  /** Data for humans (ignored with --json, where `data()` prints the document instead). */
  line(text = ''): void {
    if (!this.json) this.streams.stdout.write(`${text}\n`);
  }

  data(value: unknown): void {
    this.streams.stdout.write(`${JSON.stringify(value)}\n`);
  }

  /** Progress and remarks: stderr, and never in --json mode. */
  note(text: string): void {
    if (!this.json) this.streams.stderr.write(`${text}\n`);
  }

  get interactive(): boolean {
    return !this.json && Boolean(this.streams.stderr.isTTY);
  }

  table(
    headers: readonly string[],
    rows: readonly (readonly string[])[],
    rightAligned: readonly number[] = [],
  ): void {
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    const fmt = (cells: readonly string[]) =>
      cells
        .map((c, i) => (rightAligned.includes(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd();
    this.line(fmt(headers));
    for (const row of rows) this.line(fmt(row));
  }

  /** Row errors, one a line; `listed` is how many rows they cover (several errors may share a row). */
  rowErrors(errors: readonly RowError[], truncated: boolean, invalid: number, listed = errors.length): void {
    for (const e of errors) this.streams.stderr.write(`  ${rowError(e)}\n`);
    if (truncated) this.streams.stderr.write(`  … ${invalid - listed} more invalid rows not listed\n`);
  }

  /** An error on stderr: a sentence for people, or `{"error": {…}}` with --json. */
  error(err: unknown): void {
    const exit_code = exitCodeFor(err);
    const message = err instanceof Error ? err.message : String(err);
    if (this.json) {
      const body =
        err instanceof ApiError
          ? { code: err.code, status: err.status, message, issues: err.issues, details: err.details }
          : err instanceof RowsError
            ? { code: 'MANIFEST_ROWS_REFUSED', message, issues: err.rows }
            : { code: err instanceof Error ? err.name : 'Error', message };
      this.streams.stderr.write(`${JSON.stringify({ error: { ...body, exit_code } })}\n`);
      return;
    }
    const where = err instanceof ApiError ? ` (${err.code}, HTTP ${err.status})` : '';
    this.streams.stderr.write(`error: ${message}${where}\n`);
    if (err instanceof RowsError) this.rowErrors(err.rows, false, err.rows.length);
    if (!(err instanceof ApiError)) return;
    // A manifest's row errors are issues with a line (servers before them: details.errors).
    const rows = err.issues.filter((i): i is RowError => typeof i.line === 'number');
    for (const issue of err.issues) {
      if (typeof issue.line !== 'number') this.streams.stderr.write(`  ${issue.path}: ${issue.message}\n`);
    }
    const legacy = rows.length === 0 ? rowErrorsOf(err.details) : undefined;
    const invalid = typeof err.details.invalid_rows === 'number' ? err.details.invalid_rows : undefined;
    if (legacy) this.rowErrors(legacy.errors, legacy.truncated, legacy.invalid);
    else if (rows.length > 0) {
      const shownRows = new Set(rows.map((r) => r.line)).size;
      this.rowErrors(rows, err.details.errors_truncated === true, invalid ?? shownRows, shownRows);
    }
  }
}

export function rowError(e: RowError): string {
  const id = e.custom_id === null ? '' : ` (custom_id ${e.custom_id})`;
  return `line ${e.line}${id}: ${e.path}: ${e.message}`;
}

function rowErrorsOf(details: Record<string, unknown>) {
  if (!Array.isArray(details.errors)) return undefined;
  const errors = details.errors.filter(
    (e): e is RowError =>
      typeof e === 'object' && e !== null && typeof (e as RowError).line === 'number' && 'message' in e,
  );
  return {
    errors,
    truncated: details.errors_truncated === true,
    invalid: typeof details.invalid_rows === 'number' ? details.invalid_rows : errors.length,
  };
}

/** Dollars from micro-dollars: at least cents, more digits only when they are not zero. */
export function usd(microUsd: number): string {
  const sign = microUsd < 0 ? '-' : '';
  const abs = Math.abs(Math.round(microUsd));
  const whole = Math.floor(abs / 1_000_000);
  const frac = String(abs % 1_000_000)
    .padStart(6, '0')
    .replace(/0+$/, '')
    .padEnd(2, '0');
  return `${sign}$${whole}.${frac}`;
}
