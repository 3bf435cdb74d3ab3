import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppError } from '../errors/app-error.js';
import { parseOrThrow } from '../errors/zod-issues.js';
import { checkPlaceholders, type PendingFiles, uploadPending } from '../files/file-inputs.js';
import type { FileUploader } from '../files/uploader.js';
import type { Keys } from '../infra/keys.js';
import { tenantIdProblem } from '../model/access.js';
import { newJobId } from '../model/ids.js';
import type { JobStore } from '../model/job-store.js';
import type { JobRecord } from '../model/record.js';
import {
  createJobRequestSchema,
  DEFAULT_JOB_SCHEMA_LIMITS,
  type JobSchemaLimits,
  splitJobRequest,
} from '../model/schema.js';
import { costOf, type PriceTable } from '../money/price-table.js';
import type { UrlPolicy } from '../net/ssrf.js';
import type { JobCreator } from './creator.js';
import { assertInputUrls, assertUrlFields } from './url-checks.js';

/** How long a job's output will be (see media/estimate.ts): a hint, a probe, or a fallback. */
export interface JobEstimator {
  estimate(input: { video: string; duration_seconds?: number }): Promise<{
    seconds: number;
    source: 'hint' | 'probe' | 'fallback';
    probe_error?: string;
  }>;
}

export interface SubmitDeps {
  redis: Redis;
  keys: Keys;
  store: JobStore;
  creator: JobCreator;
  estimator: JobEstimator;
  prices: PriceTable;
  /** Where `callback_url`s may point (SSRF guard); callbacks are refused when `callbacks` is false. */
  urlPolicy?: UrlPolicy;
  callbacks?: boolean;
  limits?: JobSchemaLimits;
  /** How long an Idempotency-Key is remembered. */
  idempotencyTtlSeconds?: number;
  /** Uploads files given as bytes to the provider; absent when the deployment has no provider key. */
  uploader?: FileUploader;
}

export interface SubmitRequest {
  tenant: string;
  body: unknown;
  idempotencyKey?: string;
  now?: Date;
  /**
   * Files given as bytes (multipart parts, data: URIs), spooled and checked already, by the
   * placeholder URL that stands for each in `body` (see files/file-inputs.ts). They are uploaded
   * (once per content) only after the body has validated; the caller removes the temp files.
   */
  files?: PendingFiles;
  /** The trace the job's later steps join (see telemetry/): kept on the record from its creation. */
  traceparent?: string;
}

export interface SubmitResult {
  job: JobRecord;
  /** False when an Idempotency-Key matched an earlier submission and its job was returned. */
  created: boolean;
}

// Building a zod schema is costly (zod 4 compiles a fast path per instance), so build it once per limits.
const schemaCache = new WeakMap<JobSchemaLimits, ReturnType<typeof createJobRequestSchema>>();
function requestSchema(limits: JobSchemaLimits) {
  let schema = schemaCache.get(limits);
  if (!schema) {
    schema = createJobRequestSchema(limits);
    schemaCache.set(limits, schema);
  }
  return schema;
}

const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** Deterministic JSON (sorted keys) so the same body always hashes the same. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Validate a job request, write Recast's record and put the job on the dispatch queue.
 * Nothing is written when validation fails. With an Idempotency-Key, the same body returns the
 * same job and a different body is refused (422), per the IETF Idempotency-Key draft.
 */
export async function submitJob(deps: SubmitDeps, request: SubmitRequest): Promise<SubmitResult> {
  const parsed = parseOrThrow(requestSchema(deps.limits ?? DEFAULT_JOB_SCHEMA_LIMITS), request.body);
  const tenantProblem = tenantIdProblem(request.tenant);
  if (tenantProblem) {
    throw new AppError('VALIDATION_FAILED', `invalid tenant: ${tenantProblem}`, {
      statusCode: 400,
      issues: [{ path: 'X-Tenant', message: tenantProblem }],
    });
  }
  const now = request.now ?? new Date();
  const jobId = newJobId(now.getTime());
  const { input, recast } = splitJobRequest(parsed);
  const files: PendingFiles = request.files ?? new Map();
  checkPlaceholders(input, files, deps.uploader !== undefined);

  let idemKey: string | undefined;
  if (request.idempotencyKey !== undefined) {
    if (!IDEMPOTENCY_KEY_PATTERN.test(request.idempotencyKey)) {
      throw new AppError('VALIDATION_FAILED', 'invalid Idempotency-Key: 1-255 printable ASCII characters', {
        statusCode: 400,
        issues: [{ path: 'Idempotency-Key', message: '1-255 printable ASCII characters' }],
      });
    }
    const bodyHash = createHash('sha256').update(canonicalJson(parsed)).digest('hex');
    idemKey = deps.keys.idempotency(
      request.tenant,
      createHash('sha256').update(request.idempotencyKey).digest('hex'),
    );
    const claimed = await deps.redis.set(
      idemKey,
      `${jobId} ${bodyHash}`,
      'EX',
      deps.idempotencyTtlSeconds ?? 86_400,
      'NX',
    );
    if (claimed === null) {
      const existing = await deps.redis.get(idemKey);
      const [existingJobId, existingHash] = (existing ?? '').split(' ');
      if (existingHash !== bodyHash) {
        throw new AppError(
          'IDEMPOTENCY_KEY_REUSED',
          'this Idempotency-Key was used with a different request body',
          {
            statusCode: 422,
          },
        );
      }
      const job = existingJobId ? await deps.store.get(existingJobId) : undefined;
      if (!job) {
        throw new AppError(
          'IDEMPOTENCY_IN_PROGRESS',
          'a request with this Idempotency-Key is still being processed; retry shortly',
          {
            statusCode: 409,
            retryable: true,
          },
        );
      }
      return { job, created: false };
    }
  }

  // Check URLs and probe before anything is written: a refused URL is a 400 that changes nothing.
  let estimate: Awaited<ReturnType<JobEstimator['estimate']>>;
  try {
    if (recast.callback_url !== undefined) {
      if (!deps.callbacks) {
        throw new AppError(
          'VALIDATION_FAILED',
          'callback_url: callbacks are not enabled on this deployment',
          {
            statusCode: 400,
            issues: [{ path: 'callback_url', message: 'callbacks are not enabled (no CALLBACK_SECRETS)' }],
          },
        );
      }
      await assertUrlFields([['callback_url', recast.callback_url]], deps.urlPolicy ?? { allowHosts: [] });
    }
    // Every URL the provider will fetch, hint or not; files sent as bytes are the provider's own.
    await assertInputUrls(input, deps.urlPolicy ?? { allowHosts: [] }, new Set(files.keys()));
    // The uploaded video was measured from its bytes: no need to fetch it back to probe it.
    const probed = files.get(input.video)?.seconds;
    if (files.size > 0 && deps.uploader) {
      const uploaded = await uploadPending(deps.uploader, request.tenant, files);
      input.video = uploaded.get(input.video)?.uri ?? input.video;
      input.images = input.images.map((image) => uploaded.get(image)?.uri ?? image);
    }
    estimate =
      probed !== undefined && recast.duration_seconds === undefined
        ? { seconds: probed, source: 'probe' }
        : await deps.estimator.estimate({
            video: input.video,
            ...(recast.duration_seconds !== undefined ? { duration_seconds: recast.duration_seconds } : {}),
          });
  } catch (err) {
    if (idemKey) await deps.redis.del(idemKey).catch(() => {});
    throw err;
  }
  const record: JobRecord = deps.store.withDefaults({
    id: jobId,
    tenant: request.tenant,
    state: 'queued',
    version: 1,
    created_at: now.toISOString(),
    updated_at: now.toISOString(),
    input,
    ...recast,
    ...(request.idempotencyKey !== undefined ? { idempotency_key: request.idempotencyKey } : {}),
    attempt: 0,
    estimate_seconds: estimate.seconds,
    estimate_source: estimate.source,
    estimate_micro_usd: costOf(deps.prices, input.resolution, estimate.seconds).microUsd,
    ...(estimate.probe_error ? { estimate_probe_error: estimate.probe_error } : {}),
    ...(request.traceparent ? { traceparent: request.traceparent } : {}),
  });
  try {
    await deps.creator.create(record);
  } catch (err) {
    // Nothing became visible (one MULTI); free the key so a client retry starts clean.
    if (idemKey) await deps.redis.del(idemKey).catch(() => {});
    if (err instanceof AppError) throw err;
    throw new AppError('REDIS_UNAVAILABLE', 'could not store the job; retry', {
      statusCode: 503,
      retryable: true,
      cause: err,
    });
  }
  return { job: record, created: true };
}
