import { z } from 'zod';

const RateSchema = z.number().min(0).max(1);

/** A fixed number of milliseconds, or a uniform draw from a range. */
export const DurationSchema = z.union([
  z.number().min(0),
  z
    .strictObject({ min: z.number().min(0), max: z.number().min(0) })
    .refine((range) => range.min <= range.max, { message: 'min must not exceed max' }),
]);
export type Duration = z.infer<typeof DurationSchema>;

export const LimitSchema = z.strictObject({
  limit: z.number().int().positive(),
  windowMs: z.number().int().positive(),
});
export type Limit = z.infer<typeof LimitSchema>;

const GroupLimitSchema = z.union([LimitSchema, z.literal(false)]);

export const RateLimitsSchema = z.union([
  z.literal(false),
  z.strictObject({ run: GroupLimitSchema, get: GroupLimitSchema, upload: GroupLimitSchema }),
]);
export type RateLimits = z.infer<typeof RateLimitsSchema>;

export const RateLimitsPatchSchema = z.union([
  z.literal(false),
  z.strictObject({ run: GroupLimitSchema, get: GroupLimitSchema, upload: GroupLimitSchema }).partial(),
]);
export type RateLimitsPatch = z.infer<typeof RateLimitsPatchSchema>;

const faultsShape = {
  latencyMs: DurationSchema,
  failureRate: RateSchema,
  serverErrorRate: RateSchema,
  lostRunAnswerRate: RateSchema,
  duplicateRunRate: RateSchema,
  listFilters: z.boolean(),
  rateLimitedRate: RateSchema,
  rateLimits: RateLimitsSchema,
  webhookDropRate: RateSchema,
  webhookDuplicateRate: RateSchema,
  webhookDelayMs: DurationSchema,
  webhookReorderRate: RateSchema,
  webhookShape: z.enum(['bare', 'event']),
  envelope: z.enum(['v1', 'v2', 'v3']),
  statusNumbering: z.enum(['current', 'legacy']),
  statusText: z.boolean(),
  billingSkew: z.number().positive(),
};

export const FaultsSchema = z.strictObject(faultsShape);
export type Faults = z.infer<typeof FaultsSchema>;

export const FaultsPatchSchema = z
  .strictObject({ ...faultsShape, rateLimits: RateLimitsPatchSchema })
  .partial();
export type FaultsPatch = z.infer<typeof FaultsPatchSchema>;

/** The provider's documented limits: run 100/min, get 1000/min, upload 50/min. */
export const DEFAULT_RATE_LIMITS = {
  run: { limit: 100, windowMs: 60_000 },
  get: { limit: 1000, windowMs: 60_000 },
  upload: { limit: 50, windowMs: 60_000 },
} as const satisfies RateLimits;

export function defaultFaults(): Faults {
  return {
    latencyMs: 0,
    failureRate: 0,
    serverErrorRate: 0,
    lostRunAnswerRate: 0,
    duplicateRunRate: 0,
    listFilters: true,
    rateLimitedRate: 0,
    rateLimits: { ...DEFAULT_RATE_LIMITS },
    webhookDropRate: 0,
    webhookDuplicateRate: 0,
    webhookDelayMs: 0,
    webhookReorderRate: 0,
    webhookShape: 'bare',
    envelope: 'v3',
    statusNumbering: 'current',
    statusText: true,
    billingSkew: 1,
  };
}

export function mergeRateLimits(base: RateLimits, patch: RateLimitsPatch | undefined): RateLimits {
  if (patch === undefined) return base;
  if (patch === false) return false;
  // Re-enabling from "off" starts from the documented limits, not from nothing.
  const start = base === false ? DEFAULT_RATE_LIMITS : base;
  return {
    run: patch.run ?? start.run,
    get: patch.get ?? start.get,
    upload: patch.upload ?? start.upload,
  };
}

export function mergeFaults(base: Faults, patch: FaultsPatch): Faults {
  const { rateLimits, ...rest } = patch;
  const merged: Faults = { ...base, rateLimits: mergeRateLimits(base.rateLimits, rateLimits) };
  for (const [key, value] of Object.entries(rest)) {
    if (value !== undefined) Object.assign(merged, { [key]: value });
  }
  return FaultsSchema.parse(merged);
}

/** Resolves a Duration to milliseconds; `draw` is only called for a true range. */
export function resolveDuration(duration: Duration, draw: () => number): number {
  if (typeof duration === 'number') return duration;
  if (duration.max === duration.min) return duration.min;
  return duration.min + Math.floor(draw() * (duration.max - duration.min + 1));
}
