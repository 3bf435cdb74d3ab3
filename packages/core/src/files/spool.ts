import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError, isAppError } from '../errors/app-error.js';
import type { Logger } from '../infra/logger.js';
import { probeLocalVideo } from '../media/local-probe.js';
import { ProbeError } from '../media/probe-error.js';
import { acceptedTypes, type MediaKind, type MediaType, SNIFF_BYTES, sniffMedia } from './sniff.js';

const SPOOL_PREFIX = 'recast-upload-';

export interface SpoolOptions {
  /** Where temp files go (a local disk: they are read back to probe, hash-checked and uploaded). */
  dir: string;
  /** The request field the bytes came from, named in every error: `video`, `images[1]`. */
  field: string;
  maxBytes: number;
  accept: readonly MediaKind[];
  /** The client's file name, kept (sanitised) for the provider's file record. */
  filename?: string;
  /** Read the duration of a video from the temp file (refusing one that has none). */
  probeVideo?: boolean;
  logger?: Logger;
}

/** Bytes received whole, in a temp file that only `remove()` deletes. */
export interface SpooledFile {
  field: string;
  path: string;
  size: number;
  sha256: string;
  kind: MediaKind;
  contentType: MediaType;
  filename: string;
  /** The video track's duration, when `probeVideo` was asked for a video. */
  seconds?: number;
  remove(): Promise<void>;
}

/**
 * Streams an upload to a temp file while hashing it, looking at its first bytes to refuse a wrong
 * type before the rest arrives, and stopping as soon as it passes `maxBytes`: never more than a
 * chunk of it is in memory. On any failure (a wrong type, too large, the client gone mid-file)
 * the temp file is deleted before the error is thrown.
 */
export async function spoolUpload(
  source: AsyncIterable<Uint8Array>,
  options: SpoolOptions,
): Promise<SpooledFile> {
  const path = join(options.dir, `${SPOOL_PREFIX}${randomBytes(12).toString('hex')}`);
  const remove = () => rm(path, { force: true });
  const out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
  const hash = createHash('sha256');
  let size = 0;
  let head = Buffer.alloc(0);
  let sniffed: ReturnType<typeof sniffMedia>;
  const check = (final: boolean) => {
    if (sniffed || (head.length < SNIFF_BYTES && !final)) return;
    sniffed = sniffMedia(head);
    if (!sniffed || !options.accept.includes(sniffed.kind)) {
      throw new AppError(
        'FILE_TYPE_UNSUPPORTED',
        `${options.field}: not a${options.accept[0] === 'image' ? 'n' : ''} ${acceptedTypes(options.accept)}`,
        {
          statusCode: 415,
          issues: [
            {
              path: options.field,
              message: `the bytes are not a${options.accept[0] === 'image' ? 'n' : ''} ${acceptedTypes(options.accept)}${
                sniffed ? ` (found ${sniffed.contentType})` : ''
              }`,
            },
          ],
        },
      );
    }
  };
  try {
    for await (const piece of source) {
      const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
      size += chunk.length;
      if (size > options.maxBytes) throw tooLarge(options.field, options.maxBytes);
      if (head.length < SNIFF_BYTES)
        head = Buffer.concat([head, chunk.subarray(0, SNIFF_BYTES - head.length)]);
      check(false);
      hash.update(chunk);
      if (!out.write(chunk)) await once(out, 'drain');
    }
    if (size === 0) {
      throw new AppError('VALIDATION_FAILED', `${options.field}: the file is empty`, {
        statusCode: 400,
        issues: [{ path: options.field, message: 'the file is empty' }],
      });
    }
    check(true);
    out.end();
    await once(out, 'finish');
  } catch (error) {
    out.destroy();
    await once(out, 'close').catch(() => {});
    await remove();
    throw isAppError(error) ? error : incomplete(options.field, error);
  }
  const type = sniffed!;
  const file: SpooledFile = {
    field: options.field,
    path,
    size,
    sha256: hash.digest('hex'),
    kind: type.kind,
    contentType: type.contentType,
    filename: storedName(options.filename, type.extension),
    remove,
  };
  if (options.probeVideo && type.kind === 'video') {
    try {
      file.seconds = await probeLocalVideo(path, options.logger ? { logger: options.logger } : {});
    } catch (error) {
      await remove();
      if (!(error instanceof ProbeError)) throw error;
      throw new AppError('FILE_UNREADABLE', `${options.field}: the video cannot be read: ${error.message}`, {
        statusCode: 400,
        issues: [{ path: options.field, message: `the video cannot be read: ${error.message}` }],
        cause: error,
      });
    }
  }
  return file;
}

export function tooLarge(field: string, maxBytes: number): AppError {
  return new AppError('FILE_TOO_LARGE', `${field}: the file is larger than ${maxBytes} bytes`, {
    statusCode: 413,
    issues: [{ path: field, message: `larger than the ${maxBytes}-byte limit` }],
    details: { limit_bytes: maxBytes },
  });
}

function incomplete(field: string, cause: unknown): AppError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new AppError('UPLOAD_INCOMPLETE', `${field}: the upload ended before the file was complete`, {
    statusCode: 400,
    issues: [{ path: field, message: `the upload ended before the file was complete (${detail})` }],
    cause,
  });
}

/** A safe name for the provider's record: letters, digits, `._-`, and the sniffed extension. */
function storedName(name: string | undefined, extension: string): string {
  const base = (name ?? '')
    .replace(/\.[^.]*$/, '')
    .replace(/[^\w.-]+/g, '_')
    .slice(0, 100);
  return `${base || 'file'}${extension}`;
}

/** Remove every temp file of a request, whatever happened (errors are not the caller's to see). */
export async function removeAll(files: Iterable<SpooledFile>): Promise<void> {
  await Promise.all([...files].map((f) => f.remove().catch(() => {})));
}

/**
 * Temp files of uploads that a crashed process never removed (every live path removes its own):
 * deleted once they are older than any upload may take. Safe beside other processes sharing the
 * directory, since a live upload's file is younger than `olderThanMs`.
 */
export async function sweepStaleSpools(dir: string, olderThanMs: number, now = Date.now()): Promise<number> {
  let removed = 0;
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(SPOOL_PREFIX)) continue;
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile() && now - info.mtimeMs > olderThanMs) {
      await rm(path, { force: true });
      removed++;
    }
  }
  return removed;
}
