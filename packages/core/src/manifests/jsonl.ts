import { readJsonBytes } from '../model/json-input.js';
import type { RawRow } from './types.js';

// JSONL framing is trivial (one value a line), so it is a small splitter here rather than a
// library: the JSON parser does the real work. It frames on bytes: 0x0A never occurs inside a
// multi-byte UTF-8 sequence, so a character split across chunks is simply carried in `pending`
// and each complete line is read whole by the same JSON reader as request bodies (bad UTF-8 is a
// row error naming its field, never U+FFFD; `__proto__` a reserved key).
const NEWLINE = 0x0a;
const CR = 0x0d;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Lines of the file, 1-based, `\r\n` or `\n` ended, the last one with or without a newline. */
export async function* splitLines(
  chunks: AsyncIterable<Buffer>,
): AsyncGenerator<{ line: number; bytes: Buffer }> {
  let pending: Buffer[] = [];
  let line = 0;
  const take = (last: Buffer): { line: number; bytes: Buffer } => {
    let bytes = pending.length === 0 ? last : Buffer.concat([...pending, last]);
    pending = [];
    if (bytes.length > 0 && bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, -1);
    line++;
    if (line === 1 && bytes.subarray(0, 3).equals(BOM)) bytes = bytes.subarray(3);
    return { line, bytes };
  };
  for await (const chunk of chunks) {
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      yield take(chunk.subarray(start, nl));
      start = nl + 1;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  if (pending.length > 0) yield take(Buffer.alloc(0));
}

/** Blank: nothing but spaces, tabs and CRs (JSON's own whitespace). */
function isBlank(bytes: Buffer): boolean {
  for (const byte of bytes) if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) return false;
  return true;
}

/** One JSON object a line; blank lines are skipped but keep their number. */
export async function* jsonlRows(chunks: AsyncIterable<Buffer>): AsyncGenerator<RawRow> {
  for await (const { line, bytes } of splitLines(chunks)) {
    if (isBlank(bytes)) continue;
    const read = readJsonBytes(bytes, '(line)');
    if (!read.ok) {
      // A reserved key still leaves a readable row: its other fields are checked (and named) too.
      const fields = isObject(read.value) ? read.value : undefined;
      yield { line, ...(fields ? { fields } : {}), issues: [read.issue] };
      continue;
    }
    const value = read.value;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
      yield { line, issues: [{ path: '(line)', message: `must be a JSON object, got ${got}` }] };
      continue;
    }
    yield { line, fields: value as Record<string, unknown>, issues: [] };
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
