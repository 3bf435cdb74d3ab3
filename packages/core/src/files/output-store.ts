import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { AppError } from '../errors/app-error.js';

/**
 * Where kept outputs live. Small on purpose (put, stat, read a range, delete) so an S3-compatible
 * store is one more implementation: `put` is a PutObject, `stat` a HeadObject, `read` a ranged
 * GetObject. Keys are Recast's (the job id), never a user's.
 */
export interface OutputStore {
  /** Where it is, for logs (no credentials). */
  readonly description: string;
  /** Store the bytes whole under `key`, replacing what was there; readers never see half a file. */
  put(key: string, body: Readable, meta: { contentType: string }): Promise<{ size: number }>;
  stat(key: string): Promise<{ size: number } | undefined>;
  /** Bytes [start, end] inclusive, or the whole object. */
  read(key: string, range?: { start: number; end: number }): Promise<Readable>;
  delete(key: string): Promise<void>;
}

const KEY = /^[A-Za-z0-9_-]{1,128}(\.[a-z0-9]{1,8})?$/;

function checkKey(key: string): string {
  if (!KEY.test(key)) throw new AppError('INTERNAL', `invalid output store key ${JSON.stringify(key)}`);
  return key;
}

/** A local directory (or a mounted volume shared by the workers and the APIs that serve it). */
export class LocalDirectoryStore implements OutputStore {
  readonly description: string;

  constructor(private readonly dir: string) {
    this.description = `directory ${dir}`;
  }

  async put(key: string, body: Readable): Promise<{ size: number }> {
    const target = join(this.dir, checkKey(key));
    // Written aside, then renamed: a reader sees the old file or the new one, never a partial one.
    const partial = join(this.dir, `.partial-${randomBytes(8).toString('hex')}`);
    await mkdir(this.dir, { recursive: true });
    try {
      await pipeline(body, createWriteStream(partial, { flags: 'wx', mode: 0o640 }));
      const { size } = await stat(partial);
      await rename(partial, target);
      return { size };
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    try {
      const info = await stat(join(this.dir, checkKey(key)));
      return info.isFile() ? { size: info.size } : undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async read(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const stream = createReadStream(join(this.dir, checkKey(key)), range ?? {});
    // Surface a missing file as an error now, not as a broken response later.
    await new Promise<void>((done, fail) => {
      stream.once('open', () => done());
      stream.once('error', fail);
    });
    return stream;
  }

  async delete(key: string): Promise<void> {
    await rm(join(this.dir, checkKey(key)), { force: true });
  }
}

/**
 * `OUTPUT_STORE`: a directory path or a `file://` URL. Other schemes (an `s3://` bucket) are
 * refused by name until their implementation exists.
 */
export function createOutputStore(spec: string, cwd = process.cwd()): OutputStore {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    const url = new URL(spec);
    if (url.protocol !== 'file:') {
      throw new AppError(
        'CONFIG_INVALID',
        `OUTPUT_STORE: ${url.protocol}// stores are not supported (use a directory or file:///path)`,
      );
    }
    return new LocalDirectoryStore(fileURLToPath(url));
  }
  return new LocalDirectoryStore(isAbsolute(spec) ? spec : resolve(cwd, spec));
}

/** The object a job's kept output is stored under. */
export function outputKey(jobId: string): string {
  return `${jobId}.mp4`;
}
