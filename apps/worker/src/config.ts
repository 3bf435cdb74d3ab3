import { tmpdir } from 'node:os';
import { CommonConfigShape, DatabaseUrlRequired, envInt, parseConfig } from '@recast/core/config';
import { z } from 'zod';

export const WorkerConfigSchema = z.object({
  ...CommonConfigShape,
  DATABASE_URL: DatabaseUrlRequired,
  /** How often the archiver looks at the outboxes (it goes on at once while they are full). */
  ARCHIVE_INTERVAL_MS: envInt(50).default(1_000),
  /** How often the books are audited against the provider's task list (0 = never), over how long a window. */
  AUDIT_INTERVAL_MS: envInt(0).default(3_600_000),
  AUDIT_WINDOW_MS: envInt(60_000).default(24 * 3_600_000),
  /** Fault injection for the chaos suite only: pause this long between an archive write and its mark. */
  ARCHIVE_FAULT_PAUSE_MS: envInt(0).default(0),
  INFERENCE_API_URL: z
    .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
    .default('https://api.inference.sh'),
  INFERENCE_API_KEY: z.string({ message: 'is required (the provider API key, inf_...)' }).min(1),
  INFERENCE_APP: z.string().default('pruna/p-video-replace'),
  INFERENCE_STATUS_NUMBERING: z.enum(['current', 'legacy']).default('current'),
  INFERENCE_CONNECTIONS: envInt(1, 1024).default(16),
  DISPATCH_CONCURRENCY: envInt(1, 1000).default(8),
  SETTLE_CONCURRENCY: envInt(1, 1000).default(16),
  /** When a webhook arrives before the task is terminal, check again after this long. */
  SETTLE_RECHECK_MS: envInt(10).default(15_000),
  SETTLE_MAX_RECHECKS: envInt(0).default(40),
  /** Pause after a 429 that names no wait (no Retry-After, no X-RateLimit-Reset). */
  RATE_LIMIT_FALLBACK_MS: envInt(10).default(5_000),
  /** When every in-flight slot is taken, look again after this long (a settle wakes it sooner). */
  IN_FLIGHT_POLL_MS: envInt(10).default(1_000),
  FEED_INTERVAL_MS: envInt(10).default(1_000),
  /** Try parked jobs at least this often (budget windows roll over at UTC midnight / month start). */
  UNPARK_INTERVAL_MS: envInt(10).default(5_000),
  IN_FLIGHT_SWEEP_MS: envInt(100).default(30_000),
  /** BullMQ lock of a running step; a worker that dies is noticed (stalled) after about this long. */
  WORKER_LOCK_MS: envInt(1000).default(30_000),
  /** How often the reconciler looks for jobs whose provider task has been quiet too long. */
  RECONCILE_INTERVAL_MS: envInt(100).default(10_000),
  /** Jobs looked at per reconcile pass (each is one provider call: keep under its read limit). */
  RECONCILE_MAX_PER_PASS: envInt(1, 10_000).default(100),
  /**
   * A submit whose answer was lost, or whose dispatch died, may still be landing at the provider:
   * its task is searched for only this long after the POST ended (or INFERENCE_TIMEOUT_MS plus
   * this after it began, when its end is unknown), so a task created late is still found.
   */
  ORPHAN_GRACE_MS: envInt(0, 600_000).default(5_000),
  /**
   * The longest one orphan search may read the provider's task list when the provider does not
   * filter it by webhook URL; an unfinished search is retried, never taken for "no task".
   */
  ORPHAN_SEARCH_TIMEOUT_MS: envInt(1000).default(60_000),
  /**
   * When no task was found and a job goes on to its next attempt, the attempt it leaves is watched
   * this long for a task that lands late (a gateway may forward a request long after the client
   * gave up on it); one that appears is cancelled at once.
   */
  ORPHAN_WATCH_MS: envInt(0).default(600_000),
  /** One callback delivery's deadline. */
  CALLBACK_TIMEOUT_MS: envInt(100).default(10_000),
  /** Callback deliveries in flight per worker process. */
  NOTIFY_CONCURRENCY: envInt(1, 1000).default(8),
  /**
   * Keep completed outputs: a directory (or `file:///path`) shared with the API that serves them.
   * Unset: retention is off and jobs only carry the provider's link.
   */
  OUTPUT_STORE: z.string().min(1).optional(),
  /** Largest output kept; a bigger one is reported on the job, not stored. */
  OUTPUT_MAX_BYTES: envInt(1024).default(1024 * 1024 * 1024),
  /** Deadline for one download of an output, redirects and body included. */
  OUTPUT_DOWNLOAD_TIMEOUT_MS: envInt(100).default(300_000),
  /** Tries per output (exponential backoff from 2 s) before it is reported as failed. */
  OUTPUT_DOWNLOAD_ATTEMPTS: envInt(1, 50).default(5),
  /** Downloads running at once per worker process. */
  OUTPUT_CONCURRENCY: envInt(1, 100).default(2),
  /** Where a download is written while it is measured (a local disk). */
  OUTPUT_TMP_DIR: z.string().min(1).default(tmpdir()),
  /** How far (ms) a kept output's real duration may be from the billed seconds before it is flagged. */
  BILLING_TOLERANCE_MS: envInt(0, 60_000).default(250),
});
export type WorkerConfig = z.infer<typeof WorkerConfigSchema>;

export function loadConfig(env: Record<string, string | undefined> = process.env): WorkerConfig {
  return parseConfig(WorkerConfigSchema, env);
}
