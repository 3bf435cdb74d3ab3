import { z } from 'zod';
import { FaultsPatchSchema, type Limit, type RateLimitsPatch } from './faults.js';

const GROUPS = ['run', 'get', 'upload'] as const;

/** `off`, or `run=100/60000,get=1000/60000,upload=50/60000` (requests / window ms; groups optional). */
export function parseRateLimits(text: string): RateLimitsPatch {
  const trimmed = text.trim();
  if (trimmed === 'off') return false;
  const out: Partial<Record<(typeof GROUPS)[number], Limit | false>> = {};
  for (const part of trimmed.split(',')) {
    const match = /^\s*(run|get|upload)\s*=\s*(?:(off)|(\d+)\s*\/\s*(\d+))\s*$/.exec(part);
    if (!match)
      throw new Error(`EMULATOR_RATE_LIMITS: cannot read "${part}" (want e.g. run=100/60000 or run=off)`);
    const [, group, off, limit, windowMs] = match;
    const key = GROUPS.find((name) => name === group);
    if (!key) continue;
    out[key] = off ? false : { limit: Number(limit), windowMs: Number(windowMs) };
    if (out[key] !== false && (out[key].limit < 1 || out[key].windowMs < 1)) {
      throw new Error(`EMULATOR_RATE_LIMITS: ${key} needs a positive limit and window`);
    }
  }
  return out;
}

const intFromEnv = (fallback: number, min: number) => z.coerce.number().int().min(min).default(fallback);

const EnvSchema = z.object({
  EMULATOR_PORT: intFromEnv(4010, 0).pipe(z.number().max(65535)),
  EMULATOR_HOST: z.string().min(1).default('127.0.0.1'),
  EMULATOR_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  EMULATOR_API_KEY: z.string().min(1).default('inf_local_emulator'),
  EMULATOR_STEP_MS: intFromEnv(1000, 1),
  EMULATOR_HEARTBEAT_MS: intFromEnv(10_000, 1),
  EMULATOR_SEED: intFromEnv(1, 0),
  /** How long a task may take to download its inputs (the source video, the reference images). */
  EMULATOR_DOWNLOAD_TIMEOUT_MS: intFromEnv(30_000, 100),
  EMULATOR_RATE_LIMITS: z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined || text.trim() === '') return undefined;
      try {
        return parseRateLimits(text);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: error instanceof Error ? error.message : String(error) });
        return z.NEVER;
      }
    }),
  EMULATOR_FAULTS: z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined || text.trim() === '') return {};
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'EMULATOR_FAULTS must be JSON' });
        return z.NEVER;
      }
    })
    .pipe(FaultsPatchSchema),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface EmulatorConfig {
  port: number;
  host: string;
  publicUrl: string | undefined;
  apiKey: string;
  stepMs: number;
  heartbeatMs: number;
  seed: number;
  downloadTimeoutMs: number;
  rateLimits: RateLimitsPatch | undefined;
  faults: z.infer<typeof FaultsPatchSchema>;
  logLevel: z.infer<typeof EnvSchema>['LOG_LEVEL'];
}

/** Reads the emulator's environment; throws one error listing every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv): EmulatorConfig {
  const result = EnvSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || 'env'}: ${issue.message}`);
    throw new Error(`invalid emulator configuration:\n  ${problems.join('\n  ')}`);
  }
  const parsed = result.data;
  return {
    port: parsed.EMULATOR_PORT,
    host: parsed.EMULATOR_HOST,
    publicUrl: parsed.EMULATOR_PUBLIC_URL,
    apiKey: parsed.EMULATOR_API_KEY,
    stepMs: parsed.EMULATOR_STEP_MS,
    heartbeatMs: parsed.EMULATOR_HEARTBEAT_MS,
    seed: parsed.EMULATOR_SEED,
    downloadTimeoutMs: parsed.EMULATOR_DOWNLOAD_TIMEOUT_MS,
    rateLimits: parsed.EMULATOR_RATE_LIMITS,
    faults: parsed.EMULATOR_FAULTS,
    logLevel: parsed.LOG_LEVEL,
  };
}
