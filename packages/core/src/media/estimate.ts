import pLimit from 'p-limit';
import type { Agent } from 'undici';
import { AppError } from '../errors/app-error.js';
import type { Logger } from '../infra/logger.js';
import { guardedDispatcher, type LookupFn, type UrlPolicy } from '../net/ssrf.js';
import { DEFAULT_PROBE_LIMITS, ProbeError, probeVideoDuration } from './probe.js';
import { redact } from './range-reader.js';

export type EstimateSource = 'hint' | 'probe' | 'fallback';

export interface DurationEstimate {
  seconds: number;
  source: EstimateSource;
  /** Why the probe failed, when `source` is `fallback`. */
  probe_error?: string;
}

export interface DurationEstimator {
  estimate(input: { video: string; duration_seconds?: number }): Promise<DurationEstimate>;
}

export interface DurationEstimatorOptions {
  policy: UrlPolicy;
  /** Seconds assumed when the probe fails (the configured maximum: estimates must not undershoot). */
  fallbackSeconds: number;
  /** Probes running at once, across all callers of this estimator. */
  concurrency: number;
  timeoutMs: number;
  maxMoovBytes?: number;
  maxRequests?: number;
  /** Distinct URLs remembered. */
  cacheSize?: number;
  cacheTtlMs?: number;
  logger?: Logger;
  /** Resolver (tests inject one); defaults to the shared cached `dns.lookup`. */
  lookup?: LookupFn;
}

/**
 * Expected seconds for a job: the caller's hint, else the probed video duration, else the
 * fallback. One estimator per process: it owns a guarded dispatcher and a cache keyed by URL in
 * which concurrent asks for one URL share a single probe, so a manifest of 5,000 rows naming one
 * video probes it once. A URL the SSRF policy refuses is the caller's error (URL_REFUSED, 400),
 * and so is a video the probe knows no one can read (VIDEO_UNREADABLE, 400: a 404 or 410, not an
 * MP4/MOV, a truncated header: the provider would fail the task); a network error, a timeout, a
 * 5xx or a header over the limits falls back.
 */
export function createDurationEstimator(
  options: DurationEstimatorOptions,
): DurationEstimator & { close(): Promise<void> } {
  const limit = pLimit(options.concurrency);
  const cacheSize = options.cacheSize ?? 1000;
  const cacheTtlMs = options.cacheTtlMs ?? 10 * 60_000;
  const cache = new Map<string, { expires: number; result: Promise<DurationEstimate> }>();
  const dispatcher: Agent = guardedDispatcher(
    options.policy,
    options.lookup ? { lookup: options.lookup } : {},
  );

  const probe = async (video: string): Promise<DurationEstimate> => {
    try {
      const { seconds } = await probeVideoDuration(video, {
        policy: options.policy,
        timeoutMs: options.timeoutMs,
        maxMoovBytes: options.maxMoovBytes ?? DEFAULT_PROBE_LIMITS.maxMoovBytes,
        maxRequests: options.maxRequests ?? DEFAULT_PROBE_LIMITS.maxRequests,
        dispatcher,
        ...(options.lookup ? { lookup: options.lookup } : {}),
        ...(options.logger ? { logger: options.logger } : {}),
      });
      return { seconds, source: 'probe' };
    } catch (error) {
      if (!(error instanceof ProbeError)) throw error;
      if (error.reason === 'refused') {
        throw new AppError('URL_REFUSED', `cannot fetch video: ${error.message}`, {
          statusCode: 400,
          issues: [{ path: 'video', message: error.message }],
          cause: error,
        });
      }
      if (error.definite) {
        throw new AppError('VIDEO_UNREADABLE', `video cannot be read: ${error.message}`, {
          statusCode: 400,
          issues: [{ path: 'video', message: `cannot be read: ${error.message}` }],
          cause: error,
        });
      }
      options.logger?.warn(
        { video: redact(video), reason: error.reason, err: error.message },
        'video probe failed; estimating with the fallback duration',
      );
      return { seconds: options.fallbackSeconds, source: 'fallback', probe_error: error.message };
    }
  };

  return {
    async estimate({ video, duration_seconds }) {
      if (duration_seconds !== undefined && Number.isFinite(duration_seconds) && duration_seconds > 0) {
        return { seconds: duration_seconds, source: 'hint' };
      }
      const now = Date.now();
      const hit = cache.get(video);
      if (hit && hit.expires > now) {
        // Re-insert: Map order is then least recently used first.
        cache.delete(video);
        cache.set(video, hit);
        return hit.result;
      }
      const result = limit(() => probe(video));
      cache.delete(video);
      cache.set(video, { expires: now + cacheTtlMs, result });
      while (cache.size > cacheSize) {
        const oldest = cache.keys().next().value;
        if (oldest === undefined) break;
        cache.delete(oldest);
      }
      return result;
    },
    async close() {
      cache.clear();
      await dispatcher.close();
    },
  };
}
