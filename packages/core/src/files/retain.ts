import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { type Dispatcher, request } from 'undici';
import { AppError, isAppError } from '../errors/app-error.js';
import type { Logger } from '../infra/logger.js';
import { probeLocalVideo } from '../media/local-probe.js';
import { redact } from '../media/range-reader.js';
import { assertFetchableUrl, type UrlPolicy } from '../net/ssrf.js';
import { type OutputStore, outputKey } from './output-store.js';
import { type SpooledFile, spoolUpload } from './spool.js';

const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export interface RetainOptions {
  store: OutputStore;
  /** The provider's output links are fetched like any other URL: SSRF-checked, redirects too. */
  policy: UrlPolicy;
  /** A guarded dispatcher (net/ssrf.ts guardedDispatcher) shared by the downloads. */
  dispatcher: Dispatcher;
  tmpDir: string;
  maxBytes: number;
  timeoutMs: number;
  /** How far the probed duration may be from the billed seconds before the job is flagged. */
  toleranceSeconds: number;
  logger?: Logger;
}

/** The bill checked against the file: what the provider charged for and what it delivered. */
export interface DurationCheck {
  probed_seconds: number | null;
  billed_seconds: number;
  tolerance_seconds: number;
  mismatch: boolean;
  /** Why the file's duration could not be read (then `mismatch` is false: nothing to compare). */
  error?: string;
}

export interface RetainResult {
  key: string;
  size: number;
  sha256: string;
  check: DurationCheck;
}

/**
 * Keeps a job's output: downloads it (streamed to a temp file, size- and time-limited), reads its
 * real duration from the bytes, stores it under the job id, and compares the duration with the
 * billed seconds. Throws on a failed download or store (the caller retries); a file whose
 * duration cannot be read is still kept, and the check says why it is unverified.
 */
export async function retainOutput(
  options: RetainOptions,
  job: { id: string; outputUrl: string; billedSeconds: number },
): Promise<RetainResult> {
  const file = await download(options, job.outputUrl);
  try {
    let check: DurationCheck;
    try {
      const probed = await probeLocalVideo(file.path, options.logger ? { logger: options.logger } : {});
      check = compareDurations(probed, job.billedSeconds, options.toleranceSeconds);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      check = {
        probed_seconds: null,
        billed_seconds: job.billedSeconds,
        tolerance_seconds: options.toleranceSeconds,
        mismatch: false,
        error: message,
      };
    }
    const key = outputKey(job.id);
    const { size } = await options.store.put(key, createReadStream(file.path), {
      contentType: file.contentType,
    });
    return { key, size, sha256: file.sha256, check };
  } finally {
    await file.remove();
  }
}

export function compareDurations(probed: number, billed: number, tolerance: number): DurationCheck {
  // Compared in integer milliseconds: both sides are rounded to ms already.
  const diffMs = Math.abs(Math.round(probed * 1000) - Math.round(billed * 1000));
  return {
    probed_seconds: probed,
    billed_seconds: billed,
    tolerance_seconds: tolerance,
    mismatch: diffMs > Math.round(tolerance * 1000),
  };
}

async function download(options: RetainOptions, url: string): Promise<SpooledFile> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  let current = url;
  for (let hop = 0; ; hop++) {
    await assertFetchableUrl(current, options.policy, { field: 'output' });
    const response = await request(current, {
      method: 'GET',
      dispatcher: options.dispatcher,
      signal,
      headers: { 'accept-encoding': 'identity' },
    }).catch((error: unknown) => {
      throw downloadError(`could not download ${redact(current)}`, error);
    });
    if (REDIRECTS.has(response.statusCode) && typeof response.headers.location === 'string') {
      await response.body.dump();
      if (hop >= MAX_REDIRECTS)
        throw downloadError(`more than ${MAX_REDIRECTS} redirects from ${redact(url)}`);
      current = new URL(response.headers.location, current).href;
      continue;
    }
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw downloadError(`HTTP ${response.statusCode} from ${redact(current)}`);
    }
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > options.maxBytes) {
      discard(response.body);
      throw keptNever(`the output is ${declared} bytes, over the ${options.maxBytes}-byte limit`);
    }
    try {
      return await spoolUpload(response.body as Readable, {
        dir: options.tmpDir,
        field: 'output',
        maxBytes: options.maxBytes,
        accept: ['video'],
      });
    } catch (error) {
      // Too large or not a video: another try would download the same bytes again.
      if (isAppError(error) && (error.code === 'FILE_TOO_LARGE' || error.code === 'FILE_TYPE_UNSUPPORTED')) {
        const why = error.issues?.[0]?.message ?? error.message;
        throw keptNever(`the output cannot be kept: ${why}`, error, error.code);
      }
      throw downloadError(`could not download ${redact(current)}`, error);
    } finally {
      discard(response.body);
    }
  }
}

/**
 * Drops a body we stopped reading. undici reports the abort as an `error` on the body: with no
 * listener that would be an uncaught exception, taking the worker down with it.
 */
function discard(body: Readable): void {
  if (body.destroyed) return;
  body.on('error', () => {});
  body.destroy();
}

/** A download that no retry can fix. */
function keptNever(
  message: string,
  cause?: unknown,
  code: 'FILE_TOO_LARGE' | 'FILE_TYPE_UNSUPPORTED' = 'FILE_TOO_LARGE',
): AppError {
  return new AppError(code, message, { statusCode: 502, retryable: false, cause });
}

function downloadError(message: string, cause?: unknown): AppError {
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new AppError('PROVIDER_UNAVAILABLE', `${message}${detail}`, {
    statusCode: 502,
    retryable: true,
    cause,
  });
}
