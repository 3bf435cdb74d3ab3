import { z } from 'zod';
import { ProblemError } from './problem.js';

export const APP_NAME = 'pruna/p-video-replace';
export const APP_ID = '01jx7pv0rep1ace0app0000000';
/** The version id shown in the provider's docs for this app. */
export const DEFAULT_APP_VERSION = '11n0716p';
export const RESOLUTIONS = ['720p', '1080p'] as const;
export type Resolution = (typeof RESOLUTIONS)[number];

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

const UrlString = z.string().refine(isHttpUrl, { message: 'must be an http(s) URL' });

/** Mirrors the app's input schema: same fields, same defaults, nothing else accepted. */
export function appInputSchema(maxImages: number) {
  return z.strictObject({
    video: UrlString,
    images: z
      .array(UrlString)
      .min(1, { message: `must hold 1 to ${maxImages} image URLs` })
      .max(maxImages, { message: `must hold 1 to ${maxImages} image URLs` }),
    instruction_prompt: z.string().nullable().default(null),
    resolution: z.enum(RESOLUTIONS).default('720p'),
    turbo: z.boolean().default(false),
    target_fps: z.enum(['original', '24', '48']).default('original'),
    save_audio: z.boolean().default(true),
    ignore_audio: z.boolean().default(false),
    seed: z.number().int().nullable().default(null),
    disable_safety_checker: z.boolean().default(false),
  });
}

export type AppInput = z.infer<ReturnType<typeof appInputSchema>>;

/** The RunRequest as the SDK sends it; unknown top-level keys are tolerated like the real API does. */
export const RunRequestSchema = z.object({
  app: z.string().min(1),
  input: z.record(z.string(), z.unknown()),
  webhook: UrlString.optional(),
  wait: z.boolean().optional(),
  stream: z.boolean().optional(),
  setup: z.unknown().optional(),
  infra: z.enum(['cloud', 'private', 'private_first']).optional(),
  workers: z.array(z.string()).optional(),
  function: z.string().optional(),
  session: z.string().optional(),
  session_timeout: z.number().int().positive().optional(),
  run_at: z.string().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});
export type RunRequest = z.infer<typeof RunRequestSchema>;

/** Returns the pinned version, or undefined for the latest; throws 404 for any other app. */
export function resolveApp(app: string): string | undefined {
  const [name, version, ...rest] = app.split('@');
  if (name !== APP_NAME || rest.length > 0 || version === '') {
    throw new ProblemError(404, 'not_found', `app not found: ${app}`);
  }
  return version;
}

/** Turns the first zod issue into a 400 whose detail names the field, e.g. `input.images[2]: ...`. */
export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, prefix: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (!issue) throw new ProblemError(400, 'invalid_request', `${prefix || 'body'}: invalid`);
  const path = formatPath(prefix, issue.path);
  if (issue.code === 'unrecognized_keys') {
    const fields = issue.keys.map((key) => formatPath(prefix, [...issue.path, key]));
    throw new ProblemError(400, 'invalid_request', `${fields.join(', ')}: unknown field`);
  }
  const missing = issue.code === 'invalid_type' && issue.input === undefined;
  throw new ProblemError(400, 'invalid_request', `${path}: ${missing ? 'is required' : issue.message}`);
}

function formatPath(prefix: string, path: ReadonlyArray<PropertyKey>): string {
  let out = prefix;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? 'body' : out;
}
