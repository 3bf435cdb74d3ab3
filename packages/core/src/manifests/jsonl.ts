import type { RawRow } from './types.js';

// JSONL framing is trivial (one value a line), so it is a small splitter here rather than a
// library: the JSON parser does the real work. It frames on bytes: 0x0A never occurs inside a
// multi-byte UTF-8 sequence, so a character split across chunks is simply carried in `pending`
// and each complete line is decoded whole (fatal, so bad UTF-8 becomes a row error, not U+FFFD).
const NEWLINE = 0x0a;
const CR = 0x0d;
const BOM = '\uFEFF';
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Lines of the file, 1-based, `\r\n` or `\n` ended, the last one with or without a newline. */
export async function* splitLines(
  chunks: AsyncIterable<Buffer>,
): AsyncGenerator<{ line: number; text: string | undefined }> {
  let pending: Buffer[] = [];
  let line = 0;
  const take = (last: Buffer): { line: number; text: string | undefined } => {
    let bytes = pending.length === 0 ? last : Buffer.concat([...pending, last]);
    pending = [];
    if (bytes.length > 0 && bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, -1);
    line++;
    let text: string | undefined;
    try {
      text = decoder.decode(bytes);
    } catch {
      text = undefined;
    }
    if (line === 1 && text?.startsWith(BOM)) text = text.slice(1);
    return { line, text };
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

const MAX_REASON = 200;

/** One JSON object a line; blank lines are skipped but keep their number. */
export async function* jsonlRows(chunks: AsyncIterable<Buffer>): AsyncGenerator<RawRow> {
  for await (const { line, text } of splitLines(chunks)) {
    if (text === undefined) {
      yield { line, issues: [{ path: '(line)', message: 'invalid UTF-8' }] };
      continue;
    }
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      yield { line, issues: [{ path: '(line)', message: `invalid JSON: ${reason.slice(0, MAX_REASON)}` }] };
      continue;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
      yield { line, issues: [{ path: '(line)', message: `must be a JSON object, got ${got}` }] };
      continue;
    }
    yield { line, fields: value as Record<string, unknown>, issues: [] };
  }
}
