import { z } from 'zod';
import { envInt, parseConfig } from './env.js';

/** Settings every Recast process shares; each app adds its own next to these. */
export const CommonConfigShape = {
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, message: 'must be a redis:// or rediss:// URL' })
    .default('redis://127.0.0.1:6379'),
  /**
   * Redis Sentinel: `host:port` of each sentinel, comma-separated. When set, every connection asks
   * the sentinels for the current primary of `REDIS_SENTINEL_NAME` (and again after a failover);
   * `REDIS_URL` then only gives the data nodes' credentials, database and scheme (rediss: TLS to
   * data nodes and sentinels), its host and port are not used. Empty: `REDIS_URL` is the one endpoint.
   */
  REDIS_SENTINELS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const sentinels: { host: string; port: number }[] = [];
      for (const item of v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)) {
        const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(item);
        const port = Number(match?.[2]);
        if (!match || port < 1 || port > 65_535) {
          ctx.addIssue({ code: 'custom', message: `"${item}" is not host:port` });
          return z.NEVER;
        }
        sentinels.push({ host: match[1]!.replace(/^\[|\]$/g, ''), port });
      }
      return sentinels;
    }),
  /** The primary's name the sentinels monitor (`sentinel monitor <name> ...`). */
  REDIS_SENTINEL_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only')
    .default('recast'),
  /** The sentinels' own password (`requirepass` in sentinel.conf), when they have one. */
  REDIS_SENTINEL_PASSWORD: z.string().optional(),
  /**
   * Replicas that must hold an acknowledged write (a job accepted, a webhook accepted, a charge, a
   * terminal transition, a budget change, a submit claim) before the answer: `WAIT` after it, on
   * the connection that wrote it. Unreached in `REDIS_WAIT_TIMEOUT_MS`: a retryable
   * `REDIS_NOT_REPLICATED` (503 over HTTP; a worker's step is put back for a second, no attempt
   * used up). 0: no wait (no replicas).
   */
  REDIS_WAIT_REPLICAS: envInt(0, 16).default(0),
  REDIS_WAIT_TIMEOUT_MS: envInt(1, 60_000).default(1_000),
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only')
    .default('recast'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Signs per-job webhook tokens. Same value on every API and worker process of a deployment. */
  WEBHOOK_SECRET: z
    .string({ message: 'is required (a random string of at least 16 characters)' })
    .min(16, 'must be at least 16 characters'),
  /** Submits (POST /apps/run) allowed per window, across all workers; 0 = no limit. The
   * provider documents 100 runs per minute. The API reads these too, to report them. */
  PROVIDER_SUBMITS_PER_WINDOW: envInt(0).default(100),
  /**
   * Submits are paced across the window (PROVIDER_RATE_WINDOW_MS / PROVIDER_SUBMITS_PER_WINDOW
   * apart on average, 600 ms at the defaults) instead of going all at once; this many may go back
   * to back after a quiet spell. 0 = no pacing (a whole window's submits in one burst).
   */
  PROVIDER_SUBMIT_BURST: envInt(0).default(10),
  /** The window of all three provider quotas (submits, task reads, uploads). */
  PROVIDER_RATE_WINDOW_MS: envInt(1).default(60_000),
  /** Task reads (GET /tasks/{id}, /status, /tasks/list, cancels) per window, across every
   * process: settle confirmations, reconcile polls, orphan searches, timelines; 0 = no limit. The
   * provider documents 1,000 a minute. */
  PROVIDER_READS_PER_WINDOW: envInt(0).default(1000),
  /** Uploads (POST /files) per window, across every API process; 0 = no limit. The provider
   * documents 50 a minute. */
  PROVIDER_UPLOADS_PER_WINDOW: envInt(0).default(50),
  /** How long a read or an upload waits for its turn in its quota before it is refused (a worker
   * step is put back; an upload answers 503 with Retry-After). */
  PROVIDER_QUOTA_MAX_WAIT_MS: envInt(0).default(15_000),
  /** Tasks in flight at the provider (submitted, not yet terminal), across all workers; 0 = no cap. */
  PROVIDER_MAX_IN_FLIGHT: envInt(0).default(100),
  /** One provider request's deadline (a submit still unanswered after it may yet have reached the provider). */
  INFERENCE_TIMEOUT_MS: envInt(100).default(30_000),
  /**
   * A submitted, running or cancelling job quiet this long is polled at the provider; per state
   * when one should differ (cancelling: at most 60 s by default). Every process writes these into
   * the reconcile index with each transition, so the API and the workers must agree on them.
   */
  RECONCILE_AFTER_MS: envInt(100).default(300_000),
  /**
   * A quiet task is polled when it is overdue against its expected duration (the processing time
   * per output second observed on completed tasks, times its seconds, times 1.5), but never sooner
   * than this after its last move, and never later than RECONCILE_AFTER_MS (the ceiling).
   */
  RECONCILE_MIN_AFTER_MS: envInt(100).default(30_000),
  /**
   * Processing time per output second assumed until completed tasks have shown the real one
   * (ETAs, and when a quiet task is overdue): 15 s per second of output, 2.5 minutes for a 10 s clip.
   */
  ETA_DEFAULT_MS_PER_OUTPUT_SECOND: envInt(1).default(15_000),
  RECONCILE_SUBMITTED_AFTER_MS: envInt(100).optional(),
  RECONCILE_RUNNING_AFTER_MS: envInt(100).optional(),
  RECONCILE_CANCELLING_AFTER_MS: envInt(100).optional(),
  /**
   * How long the provider may take with a job's task, from its submit, unless the job gives
   * `timeout_seconds`: past it the task is cancelled and the job fails with DEADLINE_EXCEEDED
   * (the provider's app has no deadline of its own). 0: no default deadline.
   */
  JOB_TIMEOUT_SECONDS: envInt(0, 7 * 24 * 3600).default(3600),
  /** A job stuck in `submitting` this long (its dispatch died) is checked for an orphan task. */
  ORPHAN_AFTER_MS: envInt(100).default(120_000),
  /** How long job and batch events stay in a tenant's stream (GET /v1/events resumes within it). */
  EVENTS_RETENTION_MS: envInt(1_000).default(24 * 3600_000),
  /**
   * PostgreSQL, the system of record of what has finished (postgres://...). The apps require it
   * (`pnpm start` runs an embedded one when it is unset); see README "What lives where".
   */
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  DATABASE_POOL_SIZE: envInt(1, 200).default(10),
  /**
   * A finished job (its record, its charges; a finished batch) leaves Redis this long after it is
   * archived in PostgreSQL, never before; BullMQ keeps its finished steps no longer than this.
   */
  REDIS_JOB_RETENTION_MS: envInt(1_000).default(24 * 3600_000),
  /** Where the provider reaches this deployment's webhook receiver (the API's public base URL). */
  PUBLIC_URL: z
    .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
    .default('http://127.0.0.1:3000'),
  /**
   * Port of the Prometheus `GET /metrics` server, apart from the public API port; 0 (the default)
   * serves no metrics. Each process needs its own port when they share a host.
   */
  METRICS_PORT: envInt(0, 65_535).default(0),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  MAX_IMAGES: envInt(1, 4).default(4),
  MAX_METADATA_BYTES: envInt(0, 65_536).default(4096),
  /** JSON price table `{version, micro_usd_per_second: {"720p", "1080p"}}`; default $0.03/$0.06. */
  PRICE_TABLE: z.string().optional(),
  /** Dispatch jobs handed to BullMQ ahead of time; a newcomer tenant waits behind at most these. */
  FAIR_SHARE_BUFFER: envInt(1, 10_000).default(16),
  /**
   * Tries of a job's dispatch step on transient provider errors (network, timeouts, 5xx), with
   * exponential backoff and jitter from 2 s; 429s do not count. Then the job fails.
   */
  DISPATCH_ATTEMPTS: envInt(1, 100).default(8),
  /**
   * Hosts (`name` or `name:port`, comma-separated) that URL fetches may reach although they
   * resolve to loopback or private addresses; everything else private is refused (SSRF guard).
   */
  SSRF_ALLOW_HOSTS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean),
    ),
  /**
   * Secrets that sign job callbacks (Standard Webhooks), comma-separated: `whsec_<base64>` or at
   * least 16 characters. Several during a rotation (every one signs). Empty: callbacks are off and
   * a job with a `callback_url` is refused.
   */
  CALLBACK_SECRETS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((h) => h.trim())
        .filter(Boolean),
    ),
};

const CoreConfigSchema = z.object(CommonConfigShape);
/** The settings every process shares, parsed (both apps' configs include them). */
export type CoreConfig = z.infer<typeof CoreConfigSchema>;

/** The shared settings alone, from an environment (tests, tools; each app parses its own schema). */
export function loadCoreConfig(env: Record<string, string | undefined>): CoreConfig {
  return parseConfig(CoreConfigSchema, env);
}

/** DATABASE_URL where an app needs it: required, with a message that says how to get one. */
export const DatabaseUrlRequired = z
  .string({
    message:
      'is required: the PostgreSQL that keeps finished jobs and charges (postgres://user@host/db); `pnpm start` runs an embedded one when it is unset',
  })
  .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL');
