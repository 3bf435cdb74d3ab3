import { z } from 'zod';

export const RESOLUTIONS = ['720p', '1080p'] as const;
export const ResolutionSchema = z.enum(RESOLUTIONS);
export type Resolution = z.infer<typeof ResolutionSchema>;

/** An absolute http(s) URL: other schemes (file:, data:, ftp:) are refused here. */
export const HttpUrlSchema = z
  .string({ message: 'must be a string URL' })
  .max(4096, 'must be at most 4096 characters')
  .refine(
    (value) => {
      try {
        const url = new URL(value);
        return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname.length > 0;
      } catch {
        return false;
      }
    },
    { message: 'must be an absolute http(s) URL' },
  );

export interface JobSchemaLimits {
  /** The app accepts 1-4 reference images; upstream listings say 3, so keep it configurable. */
  maxImages: number;
  /** Serialized size limit of `metadata`, in bytes. */
  maxMetadataBytes: number;
  /** Largest `duration_seconds` hint accepted. */
  maxDurationSeconds: number;
}

export const DEFAULT_JOB_SCHEMA_LIMITS: JobSchemaLimits = {
  maxImages: 4,
  maxMetadataBytes: 4096,
  maxDurationSeconds: 3600,
};

/**
 * How deep `metadata` may nest. JSON.stringify (the size check, storage) recurses, so metadata a
 * few thousand levels deep would overflow the stack: depth is a limit like size, checked first,
 * without recursion. 32 levels is far more than any real label set needs.
 */
export const MAX_METADATA_DEPTH = 32;

/** Levels of objects and arrays in `value` (a scalar is 0), counted without recursion; stops past `limit`. */
export function nestingDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    const level = depth + 1;
    deepest = Math.max(deepest, level);
    if (deepest > limit) return deepest;
    for (const child of Object.values(node)) stack.push([child, level]);
  }
  return deepest;
}

/** A JSON object of labels: at most MAX_METADATA_DEPTH levels and `maxBytes` serialized. */
export function metadataSchema(maxBytes: number) {
  return z.record(z.string(), z.unknown(), { message: 'must be an object' }).superRefine((value, ctx) => {
    if (nestingDepth(value, MAX_METADATA_DEPTH) > MAX_METADATA_DEPTH) {
      ctx.addIssue({ code: 'custom', message: `must nest at most ${MAX_METADATA_DEPTH} levels deep` });
      return;
    }
    if (Buffer.byteLength(JSON.stringify(value)) > maxBytes) {
      ctx.addIssue({ code: 'custom', message: `must serialize to at most ${maxBytes} bytes` });
    }
  });
}

export const TARGET_FPS = ['original', '24', '48'] as const;
const TARGET_FPS_MESSAGE = 'must be "original", "24" or "48"';

/**
 * `target_fps` as a request gives it: the app's strings, or 24 and 48 as numbers (what CSV and
 * JSON users write), normalized to the strings. Stored records and answers hold the strings only.
 */
const TargetFpsRequestSchema = z.union(
  [
    z.enum(TARGET_FPS),
    z.literal(24).transform(() => '24' as const),
    z.literal(48).transform(() => '48' as const),
  ],
  { message: TARGET_FPS_MESSAGE },
);

/** The `pruna/p-video-replace` input, field for field, with the app's defaults. */
export function createReplaceInputShape(limits: JobSchemaLimits) {
  return {
    video: HttpUrlSchema,
    images: z
      .array(HttpUrlSchema, { message: 'must be an array of image URLs' })
      .min(1, 'must hold at least 1 image')
      .max(limits.maxImages, `must hold at most ${limits.maxImages} images`),
    instruction_prompt: z
      .string({ message: 'must be a string or null' })
      .max(2000, 'must be at most 2000 characters')
      .nullable()
      .default(null),
    resolution: z.enum(RESOLUTIONS, { message: 'must be "720p" or "1080p"' }).default('720p'),
    turbo: z.boolean({ message: 'must be a boolean' }).default(false),
    target_fps: TargetFpsRequestSchema.default('original'),
    save_audio: z.boolean({ message: 'must be a boolean' }).default(true),
    ignore_audio: z.boolean({ message: 'must be a boolean' }).default(false),
    seed: z.int({ message: 'must be an integer or null' }).nullable().default(null),
    disable_safety_checker: z.boolean({ message: 'must be a boolean' }).default(false),
  };
}

/** The app's input as stored and answered: normalized (`target_fps` a string), no transforms. */
export function createReplaceInputSchema(limits: JobSchemaLimits = DEFAULT_JOB_SCHEMA_LIMITS) {
  return z.strictObject({
    ...createReplaceInputShape(limits),
    target_fps: z.enum(TARGET_FPS, { message: TARGET_FPS_MESSAGE }).default('original'),
  });
}
export const ReplaceInputSchema = createReplaceInputSchema();
export type ReplaceInput = z.infer<typeof ReplaceInputSchema>;

/** Recast's own fields, next to the app's. */
export function createRecastFieldsShape(limits: JobSchemaLimits) {
  return {
    duration_seconds: z
      .number({ message: 'must be a number of seconds' })
      .positive('must be greater than 0')
      .max(limits.maxDurationSeconds, `must be at most ${limits.maxDurationSeconds}`)
      .optional(),
    metadata: metadataSchema(limits.maxMetadataBytes).optional(),
    /** Reserved: outbound callbacks on terminal states arrive with the delivery-guarantees work. */
    callback_url: HttpUrlSchema.optional(),
    /** When a budget cannot cover the job: `park` (default) waits for money, `reject` fails it. */
    on_budget_exceeded: z.enum(['park', 'reject'], { message: 'must be "park" or "reject"' }).optional(),
    /** How many times a task the provider failed is retried as a new attempt (default 0). */
    max_provider_retries: z
      .int({ message: 'must be an integer' })
      .min(0, 'must be at least 0')
      .max(5, 'must be at most 5')
      .optional(),
    /**
     * How long the provider may take with the job's task, from its submit: past it the task is
     * cancelled there and the job fails with DEADLINE_EXCEEDED (default JOB_TIMEOUT_SECONDS).
     */
    timeout_seconds: z
      .int({ message: 'must be an integer number of seconds' })
      .min(1, 'must be at least 1')
      .max(MAX_TIMEOUT_SECONDS, `must be at most ${MAX_TIMEOUT_SECONDS} (7 days)`)
      .optional(),
  };
}

/** The longest `timeout_seconds` a job may ask for: 7 days. */
export const MAX_TIMEOUT_SECONDS = 7 * 24 * 3600;

/** The body of `POST /v1/jobs`: the app's input plus Recast's fields; unknown fields are refused. */
export function createJobRequestSchema(limits: JobSchemaLimits = DEFAULT_JOB_SCHEMA_LIMITS) {
  return z.strictObject({ ...createReplaceInputShape(limits), ...createRecastFieldsShape(limits) });
}
export const JobRequestSchema = createJobRequestSchema();
export type JobRequest = z.infer<typeof JobRequestSchema>;

const REPLACE_INPUT_KEYS = Object.keys(
  createReplaceInputShape(DEFAULT_JOB_SCHEMA_LIMITS),
) as (keyof ReplaceInput)[];

/** Split a parsed request into the app's input and Recast's fields. */
export function splitJobRequest(request: JobRequest): {
  input: ReplaceInput;
  recast: {
    duration_seconds?: number;
    metadata?: Record<string, unknown>;
    callback_url?: string;
    on_budget_exceeded?: 'park' | 'reject';
    max_provider_retries?: number;
    timeout_seconds?: number;
  };
} {
  const input = Object.fromEntries(REPLACE_INPUT_KEYS.map((k) => [k, request[k]])) as ReplaceInput;
  const {
    duration_seconds,
    metadata,
    callback_url,
    on_budget_exceeded,
    max_provider_retries,
    timeout_seconds,
  } = request;
  return {
    input,
    recast: {
      ...(duration_seconds !== undefined ? { duration_seconds } : {}),
      ...(metadata !== undefined ? { metadata } : {}),
      ...(callback_url !== undefined ? { callback_url } : {}),
      ...(on_budget_exceeded !== undefined ? { on_budget_exceeded } : {}),
      ...(max_provider_retries !== undefined ? { max_provider_retries } : {}),
      ...(timeout_seconds !== undefined ? { timeout_seconds } : {}),
    },
  };
}
