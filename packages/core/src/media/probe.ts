import type { Dispatcher } from 'undici';
import { isAppError } from '../errors/app-error.js';
import type { Logger } from '../infra/logger.js';
import { assertFetchableUrl, guardedDispatcher, type LookupFn, type UrlPolicy } from '../net/ssrf.js';
import { measureVideo } from './measure.js';
import { ProbeError } from './probe-error.js';
import { RangeReader, redact } from './range-reader.js';

export { ProbeError, type ProbeFailure } from './probe-error.js';

export interface ProbeOptions {
  policy: UrlPolicy;
  /** Deadline for the whole probe, every request and body included. */
  timeoutMs: number;
  /** Largest moov box read (and most bytes taken from a server that ignores Range). */
  maxMoovBytes: number;
  /** HTTP requests in all, redirect hops included. */
  maxRequests: number;
  /** Must be a guarded dispatcher; one is made (and closed) per probe when absent. */
  dispatcher?: Dispatcher;
  /** Resolver for the URL checks and the probe's own dispatcher; a given dispatcher has its own. */
  lookup?: LookupFn;
  logger?: Logger;
}

export interface ProbeResult {
  /** Presented duration of the first video track, seconds, 3 decimals at most. */
  seconds: number;
  bytesRead: number;
  requests: number;
}

/**
 * A fragmented file without `mehd` or `mfra` costs one request per fragment: 32 requests cover a
 * minute of one-second fragments (and moov-first files need 2); the deadline bounds them anyway.
 */
export const DEFAULT_PROBE_LIMITS = { timeoutMs: 10_000, maxMoovBytes: 8 * 1024 * 1024, maxRequests: 32 };

/**
 * Reads a remote MP4/MOV's video duration from its header alone: a few small Range requests to
 * find `moov` (at the front, or after `mdat` at the end), then `moov` itself; for a fragmented
 * file, its `mehd`, else its `mfra` index and two fragments, else each fragment's header (see
 * fragments.ts). Never downloads the media data, unless the server ignores Range (then at most
 * `maxMoovBytes` of it).
 */
export async function probeVideoDuration(url: string, options: ProbeOptions): Promise<ProbeResult> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  const dispatcher =
    options.dispatcher ?? guardedDispatcher(options.policy, options.lookup ? { lookup: options.lookup } : {});
  const reader = new RangeReader(url, {
    policy: options.policy,
    dispatcher,
    signal,
    maxRequests: options.maxRequests,
    maxStreamBytes: options.maxMoovBytes,
    ...(options.lookup ? { lookup: options.lookup } : {}),
  });
  try {
    await assertFetchableUrl(url, options.policy, options.lookup ? { lookup: options.lookup } : {});
    const seconds = await measureVideo(reader, {
      maxHeaderBytes: options.maxMoovBytes,
      logger: options.logger,
    });
    return { seconds, bytesRead: reader.bytesRead, requests: reader.requests };
  } catch (error) {
    throw asProbeError(error, signal, url, options.timeoutMs);
  } finally {
    reader.close();
    if (dispatcher !== options.dispatcher) await dispatcher.destroy();
  }
}

function asProbeError(error: unknown, signal: AbortSignal, url: string, timeoutMs: number): ProbeError {
  if (error instanceof ProbeError) return error;
  // The guarded dispatcher refuses at connect time with the same AppError the URL check throws.
  if (isAppError(error) && error.code === 'URL_REFUSED') {
    return new ProbeError('refused', error.issues?.[0]?.message ?? error.message, { cause: error });
  }
  if (signal.aborted) {
    return new ProbeError('timeout', `no complete answer from ${redact(url)} within ${timeoutMs} ms`, {
      cause: error,
    });
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new ProbeError('http', `could not read ${redact(url)}: ${detail}`, { cause: error });
}
