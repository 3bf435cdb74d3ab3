/**
 * One `Range: bytes=...` header against a file of `size` bytes (RFC 9110 §14.1.2): a range to
 * send (206), `unsatisfiable` (416), or undefined to send the whole file (200) — which is what a
 * server may do with a header it does not parse or with several ranges, and what players and
 * download managers cope with.
 */
export function parseByteRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match) return undefined;
  const [, from = '', to = ''] = match;
  if (from === '' && to === '') return undefined;
  if (from === '') {
    // A suffix: the last N bytes.
    const suffix = Number(to);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(from);
  if (!Number.isSafeInteger(start) || start >= size) return 'unsatisfiable';
  const last = to === '' ? size - 1 : Number(to);
  if (last < start) return undefined;
  return { start, end: Math.min(last, size - 1) };
}
