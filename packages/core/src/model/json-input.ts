import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { FieldIssue } from '../errors/app-error.js';

/**
 * JSON as users send it, read one way for request bodies and manifest rows alike: bytes must be
 * UTF-8 (a bad sequence is refused naming the field it sits in, never turned into U+FFFD), and
 * `__proto__` is a reserved key wherever it appears (JSON.parse keeps it as an own key, but zod
 * and object spreads would drop it or treat it as the prototype: refused, never dropped silently).
 * Nothing here recurses, so a value nested thousands of levels deep is read like any other.
 */
export type JsonRead =
  | { ok: true; value: unknown }
  /** `value` is there when the JSON itself was read (a reserved key), for what else it says. */
  | { ok: false; issue: FieldIssue; value?: unknown };

const RESERVED_KEYS = new Set(['__proto__']);
const MAX_REASON = 200;

/** `bytes` (a body, a JSONL line) as JSON. `where` names the whole when no field can be named. */
export function readJsonBytes(bytes: Uint8Array, where = '(body)'): JsonRead {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isUtf8(buffer)) return readJsonText(buffer.toString('utf8'), where);
  return { ok: false, issue: invalidUtf8Issue(buffer, where) };
}

/** A JSON text (a CSV cell, a query parameter) as JSON, with the reserved-key rule. */
export function readJsonText(text: string, where = '(body)', prefix = ''): JsonRead {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { ok: false, issue: { path: where, message: `invalid JSON: ${reason.slice(0, MAX_REASON)}` } };
  }
  const reserved = findKey(value, (key) => RESERVED_KEYS.has(key));
  if (reserved) return { ok: false, issue: { path: join(prefix, reserved), message: 'reserved key' }, value };
  return { ok: true, value };
}

/**
 * Where the first invalid UTF-8 sequence is: each bad sequence is swapped for an ASCII marker
 * found nowhere in the bytes, and the field whose string (or key) holds the marker is named.
 */
function invalidUtf8Issue(bytes: Buffer, where: string): FieldIssue {
  let markerBytes: Buffer;
  do markerBytes = Buffer.from(`~invalid-utf8-${randomBytes(8).toString('hex')}~`);
  while (bytes.includes(markerBytes));
  const parts: Buffer[] = [];
  let from = 0;
  for (const [start, end] of invalidSequences(bytes)) {
    parts.push(bytes.subarray(from, start), markerBytes);
    from = end;
  }
  parts.push(bytes.subarray(from));
  const needle = markerBytes.toString('latin1');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    // Invalid bytes outside any string: the JSON itself is broken there.
    return { path: where, message: 'invalid UTF-8' };
  }
  const inKey = findKey(value, (key) => key.includes(needle));
  if (inKey) return { path: inKey.replaceAll(needle, '\uFFFD'), message: 'invalid UTF-8 in a field name' };
  const inValue = findString(value, (text) => text.includes(needle));
  return { path: inValue || where, message: 'invalid UTF-8' };
}

/**
 * Byte ranges of invalid UTF-8 in `bytes`, each a maximal invalid subpart (as the WHATWG decoder
 * replaces them). Hand-written: Node tells whether a buffer is valid UTF-8 (`isUtf8`), not where.
 */
export function invalidSequences(bytes: Uint8Array): [number, number][] {
  const found: [number, number][] = [];
  for (let i = 0; i < bytes.length; ) {
    const lead = bytes[i]!;
    if (lead < 0x80) {
      i++;
      continue;
    }
    let need = 0;
    let low = 0x80;
    let high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) need = 1;
    else if (lead >= 0xe0 && lead <= 0xef) {
      need = 2;
      if (lead === 0xe0) low = 0xa0;
      if (lead === 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      need = 3;
      if (lead === 0xf0) low = 0x90;
      if (lead === 0xf4) high = 0x8f;
    }
    let taken = 1;
    if (need > 0) {
      for (; taken <= need; taken++) {
        const next = bytes[i + taken];
        const min = taken === 1 ? low : 0x80;
        const max = taken === 1 ? high : 0xbf;
        if (next === undefined || next < min || next > max) break;
      }
      if (taken > need) {
        i += need + 1;
        continue;
      }
    }
    found.push([i, i + taken]);
    i += taken;
  }
  return found;
}

/** The dotted path of the first key (depth first, in order) that `test` accepts, or undefined. */
function findKey(value: unknown, test: (key: string) => boolean): string | undefined {
  const stack: [unknown, string][] = [[value, '']];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    const keys = Object.keys(node);
    for (const key of keys) if (!Array.isArray(node) && test(key)) return join(path, key);
    for (let k = keys.length - 1; k >= 0; k--) {
      const key = keys[k]!;
      stack.push([(node as Record<string, unknown>)[key], join(path, key)]);
    }
  }
  return undefined;
}

/** The dotted path of the first string value `test` accepts ('' for the root), or undefined. */
function findString(value: unknown, test: (text: string) => boolean): string | undefined {
  const stack: [unknown, string][] = [[value, '']];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (typeof node === 'string') {
      if (test(node)) return path;
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    const keys = Object.keys(node);
    for (let k = keys.length - 1; k >= 0; k--) {
      const key = keys[k]!;
      stack.push([(node as Record<string, unknown>)[key], join(path, key)]);
    }
  }
  return undefined;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}
