import type { ManifestSource } from './metered-chunks.js';
import { type ParseManifestOptions, parseManifest } from './parse-manifest.js';
import type { ManifestLimits, ManifestRow, ManifestRowError } from './types.js';

export const LIMITS: ManifestLimits = {
  maxBytes: 10 * 1024 * 1024,
  maxRows: 20_000,
  maxErrors: 100,
  maxLineBytes: 64 * 1024,
};

export const VIDEO = 'https://cdn.example.com/in/clip.mp4';
export const IMG = ['https://cdn.example.com/ref/a.png', 'https://cdn.example.com/ref/b.png'];

/** Every row and every error of a manifest. */
export async function collect(
  source: ManifestSource | string,
  options: Partial<ParseManifestOptions> & Pick<ParseManifestOptions, 'format'>,
): Promise<{ rows: ManifestRow[]; errors: ManifestRowError[] }> {
  const rows: ManifestRow[] = [];
  const errors: ManifestRowError[] = [];
  const input = typeof source === 'string' ? inChunks(source, 64 * 1024) : source;
  for await (const item of parseManifest(input, { limits: LIMITS, ...options })) {
    if (item.ok) rows.push(item.row);
    else errors.push(item.error);
  }
  return { rows, errors };
}

/** The text's UTF-8 bytes in chunks of `size` bytes: with 1, every multi-byte character is split. */
export async function* inChunks(text: string, size: number): AsyncGenerator<Buffer> {
  const bytes = Buffer.from(text, 'utf8');
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

/**
 * A lazy 2 GB upload (`head`, then `line` over and over in 64 KiB chunks): chunks are made only
 * when pulled; `pulled` counts the 64 KiB ones and `closed` says
 * whether the consumer returned the iterator (a Node stream would be destroyed then).
 */
export function hugeUpload(
  line: string,
  head = '',
): { source: AsyncGenerator<Buffer>; pulled: () => number; closed: () => boolean; chunkBytes: number } {
  const chunk = Buffer.from(line.repeat(Math.ceil((64 * 1024) / line.length)), 'utf8');
  let pulled = 0;
  let closed = false;
  async function* generate(): AsyncGenerator<Buffer> {
    try {
      if (head) yield Buffer.from(head, 'utf8');
      for (let sent = 0; sent < 2 * 1024 ** 3; sent += chunk.length) {
        pulled++;
        yield chunk;
      }
    } finally {
      closed = true;
    }
  }
  return { source: generate(), pulled: () => pulled, closed: () => closed, chunkBytes: chunk.length };
}
