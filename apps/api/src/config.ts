import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { CommonConfigShape, DatabaseUrlRequired, envBoolean, envInt, parseConfig } from '@recast/core/config';
import { z } from 'zod';

/** proxy-addr's names for address ranges (what Fastify's trustProxy takes besides addresses). */
const RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isAddressOrCidr(entry: string): boolean {
  if (RANGE_NAMES.has(entry) || isIP(entry) !== 0) return true;
  const [address = '', bits, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0 || bits === undefined || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * Fastify's `trustProxy`: which hops' X-Forwarded-For to believe when telling a client's address
 * (per-address limits count by it). `false` (default): the socket's address; `true`: the
 * leftmost forwarded address (only when every client comes through your proxies); a number: that
 * many hops; addresses or CIDRs (comma-separated, or loopback / linklocal / uniquelocal): trust
 * hops from those, so a client's own X-Forwarded-For is never believed past them.
 */
const TrustProxySchema = z
  .string()
  .default('false')
  .transform((value, ctx): boolean | number | string[] => {
    const v = value.trim().toLowerCase();
    if (v === 'false') return false;
    if (v === 'true') return true;
    if (/^\d+$/.test(v)) return Number(v);
    const entries = v
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean);
    const bad = entries.find((e) => !isAddressOrCidr(e));
    if (entries.length === 0 || bad !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `must be false, true, a hop count, or addresses/CIDRs${bad ? ` (not "${bad}")` : ''}`,
      });
      return z.NEVER;
    }
    return entries;
  });

export const ApiConfigSchema = z.object({
  ...CommonConfigShape,
  DATABASE_URL: DatabaseUrlRequired,
  PORT: envInt(0, 65_535).default(3000),
  HOST: z.string().default('127.0.0.1'),
  /** Behind a load balancer or proxy: whose X-Forwarded-For to trust (see TrustProxySchema). */
  TRUST_PROXY: TrustProxySchema,
  /** Largest JSON request body on the public API. */
  BODY_LIMIT_BYTES: envInt(1024).default(1_048_576),
  /** Largest webhook body the receiver accepts. */
  WEBHOOK_BODY_LIMIT_BYTES: envInt(1024).default(262_144),
  /** Expected output seconds of a job with no duration hint whose video could not be probed. */
  ESTIMATE_FALLBACK_SECONDS: envInt(1, 3600).default(120),
  /** Reading a source video's MP4 header: whole-probe timeout, concurrent probes, header size cap. */
  PROBE_TIMEOUT_MS: envInt(100).default(5_000),
  PROBE_CONCURRENCY: envInt(1, 256).default(8),
  PROBE_MAX_HEADER_BYTES: envInt(1024).default(8 * 1024 * 1024),
  /** Manifest limits: bytes, rows, bytes per line (413 above, naming the limit), errors reported. */
  MANIFEST_MAX_BYTES: envInt(1024).default(512 * 1024 * 1024),
  MANIFEST_MAX_ROWS: envInt(1).default(100_000),
  MANIFEST_MAX_LINE_BYTES: envInt(256).default(64 * 1024),
  MANIFEST_MAX_ERRORS: envInt(1, 100_000).default(100),
  /** The bootstrap admin key (rk_…), registered at start; create the others with it. */
  ADMIN_API_KEY: z
    .string()
    .regex(/^rk_[A-Za-z0-9_]{16,128}$/, 'must be rk_ followed by 16-128 letters, digits or _')
    .optional(),
  /**
   * How long a looked-up key is trusted without reading Redis again: a key revoked on one API
   * process stops at once there and within this long on the others (0 = read on every request).
   */
  API_KEY_CACHE_MS: envInt(0, 60_000).default(1_000),
  /** Every request is an admin of tenant X-Tenant (local development only). */
  AUTH_DISABLED: envBoolean.default(false),
  /** Requests per key (or per address without one) per window on /v1; 0 = no limit. */
  RATE_LIMIT_MAX: envInt(0).default(1200),
  RATE_LIMIT_WINDOW_MS: envInt(100).default(60_000),
  /** Requests refused as unauthenticated (401) per address per window before the address is refused outright; 0 = off. */
  AUTH_FAILURES_MAX: envInt(0).default(100),
  /** Load shedding: 503 while the event loop lags more than this (0 = off). */
  MAX_EVENT_LOOP_DELAY_MS: envInt(0).default(1_000),
  /** How often an event stream (GET /v1/events) looks for new events; heartbeat comment interval. */
  EVENTS_POLL_MS: envInt(20).default(500),
  EVENTS_HEARTBEAT_MS: envInt(100).default(15_000),
  /** GET /v1/stats is built at most once per this long per tenant and API process (0 = every time). */
  STATS_CACHE_MS: envInt(0, 60_000).default(1_000),
  /**
   * The provider, for file inputs: bytes sent to Recast (multipart parts, data: URIs, `POST
   * /v1/files`) are uploaded through its file API. Without a key, file inputs are refused.
   */
  INFERENCE_API_URL: z
    .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
    .default('https://api.inference.sh'),
  INFERENCE_API_KEY: z.string().min(1).optional(),
  /** Largest uploaded source video and reference image (413 above, naming the field). */
  UPLOAD_MAX_VIDEO_BYTES: envInt(1024).default(256 * 1024 * 1024),
  UPLOAD_MAX_IMAGE_BYTES: envInt(1024).default(20 * 1024 * 1024),
  /** Largest file given as a data: URI in a JSON body (decoded): it is held in memory, so smaller. */
  DATA_URI_MAX_BYTES: envInt(1024).default(2 * 1024 * 1024),
  /** Where uploads are written while they are checked and hashed (a local disk). */
  UPLOAD_TMP_DIR: z.string().min(1).default(tmpdir()),
  /** Deadline for sending one file's bytes to the provider's storage. */
  UPLOAD_PUT_TIMEOUT_MS: envInt(1000).default(600_000),
  /** How long an uploaded file is reused for the same bytes before it is uploaded again. */
  UPLOAD_REUSE_SECONDS: envInt(60).default(7 * 24 * 3600),
  /** Kept outputs (the workers' OUTPUT_STORE), served at GET /v1/jobs/:id/output. Unset: off. */
  OUTPUT_STORE: z.string().min(1).optional(),
});
export type ApiConfig = z.infer<typeof ApiConfigSchema>;

export function loadConfig(env: Record<string, string | undefined> = process.env): ApiConfig {
  return parseConfig(ApiConfigSchema, env);
}
