import type { RecastClient } from './client.js';
import { RecastApiError, RecastNetworkError } from './errors.js';
import { sleep } from './sleep.js';

export interface WaitOptions<T> {
  /** Between polls; default 1 s. */
  intervalMs?: number;
  /** Stops waiting (the promise rejects with the signal's reason); the job or batch goes on. */
  signal?: AbortSignal;
  /** Hears every new version (not the unchanged 304s), the last one included. */
  onUpdate?: (value: T) => void | Promise<void>;
  /**
   * Consecutive transient failures (unreachable, 429, 5xx) tolerated before the last one is
   * thrown; default 10. Others (401, 404…) are thrown at once.
   */
  maxFailures?: number;
  /** Hears each transient failure that will be retried. */
  onRetry?: (error: Error, failures: number) => void;
}

type Result<T> = { data?: T; error?: unknown; response: Response };

export function isTransient(err: unknown): boolean {
  return err instanceof RecastNetworkError || (err instanceof RecastApiError && err.retryable);
}

/**
 * Poll with `If-None-Match` (the last answer's ETag) until `done` holds: a 304 costs the API no
 * read and tells nothing new, a 200 is a new version.
 */
export async function pollUntil<T>(
  client: RecastClient,
  get: (etag: string | undefined, init: ReturnType<RecastClient['init']>) => Promise<Result<T>>,
  done: (value: T) => boolean,
  options: WaitOptions<T>,
): Promise<T> {
  const init = client.init(options.signal ? { signal: options.signal } : {});
  const maxFailures = options.maxFailures ?? 10;
  let etag: string | undefined;
  let last: T | undefined;
  let failures = 0;
  for (;;) {
    try {
      const answer = await client.sendIfModified(get(etag, init));
      failures = 0;
      // A 304: nothing new since the last answer.
      if (answer) {
        etag = answer.response.headers.get('etag') ?? undefined;
        last = answer.data;
        await options.onUpdate?.(last);
      }
      if (last !== undefined && done(last)) return last;
    } catch (err) {
      if (!isTransient(err) || ++failures >= maxFailures) throw err;
      options.onRetry?.(err as Error, failures);
    }
    await sleep(options.intervalMs ?? 1_000, init.signal);
  }
}
