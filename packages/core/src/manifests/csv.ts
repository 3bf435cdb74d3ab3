import { randomBytes } from 'node:crypto';
import { type CsvError, parse } from 'csv-parse';
import type { FieldIssue } from '../errors/app-error.js';
import { invalidSequences } from '../model/json-input.js';
import { ManifestTooLargeError } from './errors.js';
import { coerceCell, type FieldKind } from './field-kinds.js';
import type { ManifestLimits, RawRow } from './types.js';

// CSV goes through csv-parse rather than a hand-written splitter: quoting (RFC 4180 quotes,
// doubled quotes, newlines inside quoted cells), BOM and CRLF are where hand-written CSV readers
// break, and csv-parse is the maintained, streaming reference for Node.

/**
 * A quoting error is the broken record's row error, and the last one: after it csv-parse may read
 * the rest of the line as a record, or the rows below as one unclosed quoted cell, so the rest of
 * the file cannot be read reliably. The rows before it stand, each with its own errors.
 */
function quotingMessage(item: { line: number; code: string; message: string }): string {
  const what =
    item.code === 'CSV_QUOTE_NOT_CLOSED'
      ? 'a quoted cell opened on this line is never closed'
      : item.message.replace(/ instead of delimiter.*$/, '');
  return `invalid CSV: ${what}; the rest of the file after line ${item.line} could not be read`;
}

/** How one header column maps onto a job request. */
type Column = { name: string; kind: FieldKind } | { name: string; image: number };

type Parsed = { record: string[]; line: number } | { line: number; code: string; message: string };

/** A malformed row that csv-parse skipped cleanly; any other CSV error leaves the rest unreliable. */
const ROW_ERRORS = new Set(['CSV_RECORD_INCONSISTENT_FIELDS_LENGTH']);

const IMAGE_COLUMN = /^images_([1-9][0-9]*)$/;

/**
 * csv-parse decodes UTF-8 itself, turning a bad sequence into U+FFFD (and its `encoding: null`
 * mode cannot trim cells). So each bad sequence is swapped, before parsing, for an ASCII marker
 * that occurs nowhere else (a random token, neither delimiter nor quote), and a cell holding it
 * is refused as invalid UTF-8 naming its column. A character split across chunks is carried over.
 */
async function* markInvalidUtf8(chunks: AsyncIterable<Buffer>, marker: Buffer): AsyncGenerator<Buffer> {
  let carry = Buffer.alloc(0);
  for await (const chunk of chunks) {
    const bytes = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
    const keep = incompleteTail(bytes);
    carry = Buffer.from(bytes.subarray(bytes.length - keep));
    yield marked(bytes.subarray(0, bytes.length - keep), marker);
  }
  if (carry.length > 0) yield marked(carry, marker);
}

function marked(bytes: Buffer, marker: Buffer): Buffer {
  const bad = invalidSequences(bytes);
  if (bad.length === 0) return bytes;
  const parts: Buffer[] = [];
  let from = 0;
  for (const [start, end] of bad) {
    parts.push(bytes.subarray(from, start), marker);
    from = end;
  }
  parts.push(bytes.subarray(from));
  return Buffer.concat(parts);
}

/** How many bytes at the end begin a multi-byte character the next chunk may complete (0-3). */
function incompleteTail(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const byte = bytes[bytes.length - back]!;
    if (byte < 0x80) return 0;
    if (byte >= 0xc0) {
      const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
      return length > back ? back : 0;
    }
  }
  return 0;
}

/**
 * Header problems are all reported on the header's line and stop the read: with a column unknown, doubled or
 * ambiguous, every row below would be misread, so one header error beats thousands of row errors.
 */
function readHeader(
  names: string[],
  kinds: Map<string, FieldKind>,
  maxImages: number,
  marker: string,
): { columns: Column[]; issues: FieldIssue[] } {
  const columns: Column[] = [];
  const issues: FieldIssue[] = [];
  const seen = new Set<string>();
  for (const [i, name] of names.entries()) {
    if (name.includes(marker)) {
      issues.push({ path: `(column ${i + 1})`, message: `the name of column ${i + 1} is not valid UTF-8` });
      continue;
    }
    if (name === '') {
      issues.push({ path: `(column ${i + 1})`, message: `column ${i + 1} has no name` });
      continue;
    }
    if (seen.has(name)) issues.push({ path: name, message: `duplicate column: ${name}` });
    seen.add(name);
    const image = IMAGE_COLUMN.exec(name);
    const kind = name === 'custom_id' ? 'string' : kinds.get(name);
    if (image) {
      const n = Number(image[1]);
      if (n <= maxImages) columns.push({ name, image: n });
      else issues.push({ path: name, message: `unknown column: ${name} (images_1..images_${maxImages})` });
    } else if (kind !== undefined) {
      columns.push({ name, kind });
    } else {
      issues.push({ path: name, message: `unknown column: ${name}` });
    }
  }
  if (seen.has('images') && columns.some((c) => 'image' in c)) {
    issues.push({
      path: 'images',
      message: 'use either an images column (URLs separated by |) or images_1..images_N columns, not both',
    });
  }
  return { columns, issues };
}

/**
 * What a field left empty in CSV means, when no batch default fills it: said in CSV's own terms
 * (the job schema would say "must be an array", about JSON the user never wrote).
 */
function absentMessages(maxImages: number): Record<string, string> {
  return {
    video: 'the video cell is empty: give the source video URL',
    images: `no image: the images cell is empty (give 1-${maxImages} image URLs separated by |, or images_1..images_${maxImages} columns)`,
  };
}

/** A data record as request fields: empty cells are absent, typed cells coerced by their field. */
function readRecord(
  columns: Column[],
  record: string[],
  line: number,
  maxImages: number,
  marker: string,
): RawRow | undefined {
  const fields: Record<string, unknown> = {};
  const issues: FieldIssue[] = [];
  const images: [number, string][] = [];
  let empty = true;
  for (const [i, cell] of record.entries()) {
    const column = columns[i];
    if (cell === '' || column === undefined) continue;
    empty = false;
    if (cell.includes(marker)) {
      issues.push({ path: column.name, message: 'invalid UTF-8' });
      continue;
    }
    if ('image' in column) {
      images.push([column.image, cell]);
      continue;
    }
    const coerced = coerceCell(column.kind, cell, column.name);
    if ('issue' in coerced) issues.push({ path: coerced.path ?? column.name, message: coerced.issue });
    else fields[column.name] = coerced.value;
  }
  if (empty) return undefined; // a row of empty cells (",,,") counts as blank
  if (images.length > 0) fields.images = images.sort((a, b) => a[0] - b[0]).map(([, url]) => url);
  return { line, fields, issues, absent: absentMessages(maxImages) };
}

function lineBreaks(record: readonly string[]): number {
  let breaks = 0;
  for (const cell of record) breaks += cell.match(/\r\n|\r|\n/g)?.length ?? 0;
  return breaks;
}

/**
 * CSV rows: header on line 1, one row a record. csv-parse is driven by hand, one chunk per pull,
 * and hands records and skipped-record errors over through on_record / on_skip, in file order,
 * so nothing is read ahead of the consumer. (`info: true` is not used: its line is not the row's.)
 */
export async function* csvRows(
  chunks: AsyncIterable<Buffer>,
  kinds: Map<string, FieldKind>,
  limits: Pick<ManifestLimits, 'maxLineBytes'>,
  maxImages: number,
): AsyncGenerator<RawRow> {
  const queue: Parsed[] = [];
  const marker = `~invalid-utf8-${randomBytes(8).toString('hex')}~`;
  const markerBytes = Buffer.from(marker);
  // Lines are counted here, not taken from csv-parse's `info.lines`: that counts a \r\n inside a
  // quoted cell twice and gives the line a record ends on. A record starts after the previous one
  // and the blank lines csv-parse skipped since, and spans the line breaks in its cells.
  let lastEnd = 0;
  let blanksSeen = 0;
  const startOfRecord = (record: string[] | undefined): number => {
    const start = lastEnd + 1 + (parser.info.empty_lines - blanksSeen);
    blanksSeen = parser.info.empty_lines;
    lastEnd = start + (record ? lineBreaks(record) : 0);
    return start;
  };
  const parser = parse({
    bom: true,
    trim: true,
    skip_empty_lines: true,
    relax_column_count: false,
    skip_records_with_error: true,
    max_record_size: limits.maxLineBytes,
    on_record: (record: string[]) => {
      queue.push({ record, line: startOfRecord(record) });
      return null;
    },
    on_skip: (err: CsvError | undefined) => {
      const record = Array.isArray(err?.record) ? (err.record as string[]) : undefined;
      const message = (err?.message ?? 'unreadable record').replace(/ (?:on|at) line \d+/, '');
      queue.push({ line: startOfRecord(record), code: err?.code ?? 'CSV_UNKNOWN_ERROR', message });
      return undefined;
    },
  });
  let failure: Error | undefined;
  parser.on('error', (err: Error) => {
    failure ??= err;
  });
  const settle = (resolve: () => void, reject: (err: Error) => void) => (err?: Error | null) =>
    err || failure ? reject(err ?? (failure as Error)) : resolve();
  let columns: Column[] | undefined;

  // The caller stops at a header row (see readHeader) or a row that ends the read (a quoting
  // error), so nothing after one is ever read.
  function* drain(): Generator<RawRow> {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
      if ('code' in item) {
        if (item.code === 'CSV_MAX_RECORD_SIZE') {
          throw new ManifestTooLargeError('maxLineBytes', limits.maxLineBytes, item.line);
        }
        if (!ROW_ERRORS.has(item.code)) {
          yield { line: item.line, issues: [{ path: '(line)', message: quotingMessage(item) }], last: true };
          return;
        }
        yield { line: item.line, issues: [{ path: '(line)', message: `invalid CSV: ${item.message}` }] };
        continue;
      }
      if (!columns) {
        const header = readHeader(item.record, kinds, maxImages, marker);
        if (header.issues.length > 0) yield { line: item.line, issues: header.issues, header: true };
        columns = header.columns;
        continue;
      }
      const row = readRecord(columns, item.record, item.line, maxImages, marker);
      if (row) yield row;
    }
  }

  try {
    for await (const chunk of markInvalidUtf8(chunks, markerBytes)) {
      await new Promise<void>((resolve, reject) => parser.write(chunk, settle(resolve, reject)));
      for (const row of drain()) {
        yield row;
        if (row.header || row.last) return;
      }
    }
    await new Promise<void>((resolve, reject) => parser.end(settle(resolve, reject)));
    for (const row of drain()) {
      yield row;
      if (row.header || row.last) return;
    }
  } finally {
    parser.destroy();
  }
}
