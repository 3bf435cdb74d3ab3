import { ManifestTooLargeError } from './errors.js';
import type { ManifestLimits } from './types.js';

/** A request body, a file stream, or any async iterable of text or bytes. */
export type ManifestSource = AsyncIterable<Uint8Array | string> | NodeJS.ReadableStream;

const NEWLINE = 0x0a;

/**
 * The source as Buffers, metered as they pass: the total and the current physical line are
 * counted in bytes and a limit is refused on the chunk that crosses it, before anything reads
 * that chunk. Chunks are pulled one at a time when the consumer asks, so a refusal stops the
 * upload at once: leaving this generator (throw or early return) returns the source's iterator,
 * which destroys a Node stream.
 */
export async function* meteredChunks(
  source: ManifestSource,
  limits: Pick<ManifestLimits, 'maxBytes' | 'maxLineBytes'>,
): AsyncGenerator<Buffer> {
  let total = 0;
  let line = 1;
  let lineBytes = 0;
  for await (const chunk of source) {
    const buf =
      typeof chunk === 'string'
        ? Buffer.from(chunk, 'utf8')
        : Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    total += buf.length;
    if (total > limits.maxBytes) throw new ManifestTooLargeError('maxBytes', limits.maxBytes);
    let start = 0;
    for (let nl = buf.indexOf(NEWLINE); nl !== -1; nl = buf.indexOf(NEWLINE, start)) {
      if (lineBytes + nl - start > limits.maxLineBytes) {
        throw new ManifestTooLargeError('maxLineBytes', limits.maxLineBytes, line);
      }
      line++;
      lineBytes = 0;
      start = nl + 1;
    }
    lineBytes += buf.length - start;
    if (lineBytes > limits.maxLineBytes)
      throw new ManifestTooLargeError('maxLineBytes', limits.maxLineBytes, line);
    if (buf.length > 0) yield buf;
  }
}
