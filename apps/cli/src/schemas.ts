import { z } from 'zod';

// The parts of the API's answers the CLI reads. Loose objects: fields added by newer servers pass
// through untouched (and are printed by --json), missing ones are reported instead of shown as
// "undefined".

export const RowErrorSchema = z.looseObject({
  line: z.number(),
  custom_id: z.string().nullable(),
  path: z.string(),
  message: z.string(),
});
export type RowError = z.infer<typeof RowErrorSchema>;

export const BatchSchema = z.looseObject({
  id: z.string(),
  object: z.literal('batch'),
  name: z.string().nullable(),
  mode: z.string(),
  status: z.string(),
  rows: z.looseObject({ total: z.number(), invalid: z.number() }),
  counts: z.record(z.string(), z.number()),
  cost: z.looseObject({
    estimated_micro_usd: z.number(),
    reserved_micro_usd: z.number(),
    spent_micro_usd: z.number(),
    max_cost_usd: z.string().nullable(),
  }),
  created_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
});
export type Batch = z.infer<typeof BatchSchema>;

export const AcceptedSchema = BatchSchema.extend({
  errors: z.array(RowErrorSchema).default([]),
  errors_truncated: z.boolean().default(false),
});

export const QuoteSchema = z.looseObject({
  object: z.literal('batch_quote'),
  rows: z.number(),
  invalid_rows: z.number(),
  errors: z.array(RowErrorSchema),
  errors_truncated: z.boolean(),
  by_resolution: z.record(
    z.string(),
    z.looseObject({ rows: z.number(), seconds: z.number(), micro_usd: z.number() }),
  ),
  estimate_sources: z.record(z.string(), z.number()),
  estimated_micro_usd: z.number(),
  budgets: z
    .looseObject({
      fits: z.boolean(),
      checks: z.array(
        z.looseObject({
          scope: z.string(),
          window: z.string(),
          limit_micro_usd: z.number(),
          available_micro_usd: z.number(),
          fits: z.boolean(),
        }),
      ),
    })
    .optional(),
});
export type Quote = z.infer<typeof QuoteSchema>;

/** A page of a batch's jobs: only what the progress line reads (why rows wait for money). */
export const JobPageSchema = z.looseObject({
  data: z.array(
    z.looseObject({
      id: z.string(),
      budget: z.looseObject({ blocked_by: z.string().nullable() }).optional(),
    }),
  ),
});

export const BatchListSchema = z.looseObject({
  data: z.array(BatchSchema),
  next_cursor: z.string().nullable(),
});

export const CancelledSchema = BatchSchema.extend({
  cancel: z.looseObject({
    cancelled_before_spend: z.number(),
    cancelling_at_provider: z.number(),
    already_finished: z.number(),
  }),
});

export const RetriedSchema = BatchSchema.extend({
  retry: z.looseObject({ retried: z.number(), skipped: z.number() }),
});

export const ApiKeySchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  role: z.string(),
  tenant: z.string(),
  prefix: z.string(),
  created_at: z.string(),
  revoked_at: z.string().nullable(),
});
export const CreatedKeySchema = ApiKeySchema.extend({ key: z.string() });
export const KeyListSchema = z.looseObject({ data: z.array(ApiKeySchema) });

export const ErrorBodySchema = z.object({
  error: z.looseObject({
    code: z.string(),
    message: z.string(),
    issues: z.array(z.looseObject({ path: z.string(), message: z.string() })).optional(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});

/** Batch statuses, from the API's contract (one list for the server, the CLI and the dashboard). */
export { BATCH_STATUSES, FINISHED_BATCH_STATUSES as FINISHED_STATUSES } from '@recast/core/contract';

/** How many rows are over: the progress bar's value. */
export function doneOf(batch: Batch): number {
  const c = batch.counts;
  return (c.completed ?? 0) + (c.failed ?? 0) + (c.cancelled ?? 0);
}

/** GET /v1/limits: what the deployment accepts (older servers say less: those fields are optional). */
export const LimitsSchema = z.looseObject({
  manifest: z.looseObject({
    max_bytes: z.number(),
    max_rows: z.number(),
    max_line_bytes: z.number().optional(),
  }),
  max_images: z.number().optional(),
  max_metadata_bytes: z.number().optional(),
});
export type Limits = z.infer<typeof LimitsSchema>;
