import { z } from 'zod';
import { ROLES } from '../model/access.js';
import { ReplaceInputSchema } from '../model/schema.js';
import { BATCH_STATUSES, JOB_STATES } from '../model/states.js';
import { BUDGET_WINDOWS } from '../money/scopes.js';

/**
 * What the public API answers, as zod schemas: the OpenAPI document is generated from these (and
 * from the request schemas the routes parse with), and the API's tests check real answers against
 * them. Strict objects, so a field added to a view without being documented here fails a test.
 */
const usd = z.string().describe('exact decimal dollars, e.g. "0.150000"');
const micro = z.int().describe('integer micro-dollars');
const time = z.string().describe('ISO-8601 UTC');

export const ErrorBodySchema = z
  .strictObject({
    error: z.strictObject({
      code: z.string().describe('stable SCREAMING_SNAKE code: VALIDATION_FAILED, NOT_FOUND, ...'),
      message: z.string(),
      issues: z
        .array(
          z.strictObject({
            path: z.string().describe('the field (`images.1`), header, or `(line)` / `(body)` for the whole'),
            message: z.string(),
            line: z.int().optional().describe('manifest row errors: the 1-based line of the row'),
            custom_id: z.string().nullable().optional().describe("manifest row errors: the row's custom_id"),
          }),
        )
        .optional(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .meta({ id: 'Error' });

export const JobViewSchema = z
  .strictObject({
    id: z.string(),
    object: z.literal('job'),
    tenant: z.string(),
    state: z.enum(JOB_STATES),
    created_at: time,
    updated_at: time,
    input: ReplaceInputSchema,
    duration_seconds: z.number().nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    batch_id: z.string().nullable(),
    /** A batch row's custom_id and 1-based manifest line (null outside a batch). */
    custom_id: z.string().nullable(),
    line: z.int().nullable(),
    attempt: z.int(),
    provider: z.strictObject({ task_id: z.string(), status: z.string().nullable() }).nullable(),
    submitted_at: time.nullable(),
    finished_at: time.nullable(),
    output: z
      .strictObject({
        video_url: z.string().nullable().describe("the provider's link (it may not live forever)"),
        seconds: z.number().nullable(),
        recast_url: z.string().nullable().describe("Recast's kept copy (OUTPUT_STORE), once stored"),
        retention: z
          .strictObject({
            status: z.enum(['pending', 'stored', 'failed']),
            bytes: z.int().nullable(),
            sha256: z.string().nullable(),
            stored_at: time.nullable(),
            attempts: z.int(),
            error: z.string().nullable(),
          })
          .nullable(),
        duration_check: z
          .strictObject({
            probed_seconds: z.number().nullable(),
            billed_seconds: z.number(),
            tolerance_seconds: z.number(),
            mismatch: z.boolean(),
            error: z.string().optional(),
          })
          .nullable()
          .describe("the kept file's real duration against the billed seconds"),
      })
      .nullable(),
    cost: z
      .strictObject({
        resolution: z.string(),
        seconds: z.number(),
        micro_usd: micro,
        usd,
        price_version: z.string().nullable(),
      })
      .nullable(),
    duplicates: z
      .strictObject({ task_ids: z.array(z.string()), micro_usd: micro, usd })
      .nullable()
      .describe(
        'second provider tasks of this job the provider billed too, each charged as a duplicate line',
      ),
    estimate: z
      .strictObject({
        seconds: z.number(),
        source: z.enum(['hint', 'probe', 'fallback']).nullable(),
        micro_usd: micro.nullable(),
        usd: usd.nullable(),
        probe_error: z.string().nullable(),
      })
      .nullable(),
    budget: z.strictObject({
      reserved_micro_usd: micro.nullable(),
      blocked_by: z.string().nullable(),
      on_exceeded: z.enum(['park', 'reject']),
    }),
    deadline: z
      .strictObject({
        timeout_seconds: z.int().nullable().describe('how long the provider may take with the task'),
        at: time
          .nullable()
          .describe("when the current task's deadline falls (set once it is at the provider)"),
        exceeded_at: time.nullable().describe('when the deadline was passed (the task was then cancelled)'),
      })
      .describe(
        'past the deadline the task is cancelled at the provider and the job fails DEADLINE_EXCEEDED',
      ),
    error: z.strictObject({ code: z.string(), message: z.string() }).nullable(),
  })
  .meta({ id: 'Job' });

export const JobListSchema = z
  .strictObject({
    object: z.literal('list'),
    data: z.array(JobViewSchema),
    next_cursor: z.string().nullable(),
  })
  .meta({ id: 'JobList' });

const RowErrorSchema = z.strictObject({
  line: z.int(),
  custom_id: z.string().nullable(),
  path: z.string(),
  message: z.string(),
  issues: z.array(z.strictObject({ path: z.string(), message: z.string() })),
});

const countsShape = Object.fromEntries(JOB_STATES.map((s) => [s, z.int()])) as Record<
  (typeof JOB_STATES)[number],
  z.ZodInt
>;

export const EtaSchema = z
  .strictObject({
    finish_at: time
      .nullable()
      .describe('estimated finish (UTC, to the second); null when blocked by money or a provider pause'),
    blocked_by: z
      .discriminatedUnion('reason', [
        z.strictObject({
          reason: z.literal('budget'),
          scope: z
            .string()
            .nullable()
            .describe('the budget scope the parked jobs wait on, e.g. `tenant:acme`'),
          window: z.string().nullable(),
          parked: z.int(),
        }),
        z.strictObject({
          reason: z.literal('provider_paused'),
          until: time.describe('the provider asked for a pause (a 429) until then'),
        }),
        z.strictObject({
          reason: z.literal('in_flight_full'),
          in_flight: z.int(),
          max_in_flight: z.int(),
        }),
      ])
      .nullable()
      .describe(
        'why nothing moves now: parked on a budget, the provider paused after a 429, or every in-flight slot taken by other work',
      ),
    basis: z
      .strictObject({
        jobs_ahead: z.int().describe('jobs to be sent before the last one of this work, its own included'),
        output_seconds_ahead: z.number(),
        submits_per_minute: z.number().nullable(),
        max_in_flight: z.int().nullable(),
        ms_per_output_second: z.int().describe('processing time per output second the estimate uses'),
        processing_source: z.enum(['observed', 'default']),
        tasks_observed: z.int(),
      })
      .describe('what the estimate is made of'),
  })
  .meta({ id: 'Eta' });

export const BatchViewSchema = z
  .strictObject({
    id: z.string(),
    object: z.literal('batch'),
    tenant: z.string(),
    name: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    mode: z.enum(['atomic', 'partial']),
    status: z.enum(BATCH_STATUSES),
    rows: z.strictObject({ total: z.int(), invalid: z.int() }),
    counts: z.strictObject(countsShape),
    cancelled: z
      .strictObject({ before_spend: z.int(), billed: z.int() })
      .describe('after a cancel: rows cancelled before any spend, and rows billed although being cancelled'),
    cost: z.strictObject({
      estimated_micro_usd: micro,
      estimated_usd: usd,
      reserved_micro_usd: micro,
      spent_micro_usd: micro,
      spent_usd: usd,
      max_cost_usd: usd.nullable(),
    }),
    seconds_by_resolution: z.strictObject({
      estimated: z.record(z.string(), z.number()),
      billed: z.record(z.string(), z.number()),
    }),
    callback_url: z.string().nullable(),
    completion_window: z
      .string()
      .nullable()
      .describe('as asked (e.g. `24h`): rows not yet sent to the provider when it closes end `expired`'),
    expires_at: time.nullable().describe('when the completion_window closes'),
    eta: EtaSchema.nullable().describe(
      'when the rows still to do should be done, or why they cannot move; null once finished',
    ),
    created_at: time,
    started_at: time.nullable(),
    finished_at: time.nullable(),
  })
  .meta({ id: 'Batch' });

export const BatchAcceptedSchema = BatchViewSchema.extend({
  errors: z.array(RowErrorSchema).describe('the bad rows skipped in partial mode'),
  errors_truncated: z.boolean(),
}).meta({ id: 'BatchAccepted' });

export const BatchListSchema = z
  .strictObject({
    object: z.literal('list'),
    data: z.array(BatchViewSchema),
    next_cursor: z.string().nullable(),
  })
  .meta({ id: 'BatchList' });

export const BatchQuoteSchema = z
  .strictObject({
    object: z.literal('batch_quote'),
    rows: z.int(),
    invalid_rows: z.int(),
    errors: z.array(RowErrorSchema),
    errors_truncated: z.boolean(),
    by_resolution: z.record(
      z.string(),
      z.strictObject({ rows: z.int(), seconds: z.number(), micro_usd: micro }),
    ),
    estimate_sources: z.record(z.string(), z.int()),
    estimated_micro_usd: micro,
    budgets: z.strictObject({
      fits: z.boolean(),
      checks: z.array(
        z.strictObject({
          scope: z.string(),
          window: z.enum(BUDGET_WINDOWS),
          limit_micro_usd: micro,
          available_micro_usd: micro,
          fits: z.boolean(),
        }),
      ),
    }),
    eta: EtaSchema.nullable().describe(
      'when the rows would be done if submitted now, behind what is in line',
    ),
  })
  .meta({ id: 'BatchQuote' });

export const BatchCancelledSchema = BatchViewSchema.extend({
  cancel: z.strictObject({
    cancelled_before_spend: z.int(),
    cancelling_at_provider: z.int(),
    already_finished: z.int(),
  }),
}).meta({ id: 'BatchCancelled' });

export const BatchRetriedSchema = BatchViewSchema.extend({
  retry: z.strictObject({ retried: z.int(), skipped: z.int() }),
}).meta({ id: 'BatchRetried' });

export const BudgetViewSchema = z
  .strictObject({
    object: z.literal('budget'),
    scope: z.string(),
    window: z.enum(BUDGET_WINDOWS),
    limit_micro_usd: micro,
    period: z.string(),
    period_ends_at: time.nullable(),
    reserved_micro_usd: micro,
    spent_micro_usd: micro,
    available_micro_usd: micro,
    limit_usd: usd,
    reserved_usd: usd,
    spent_usd: usd,
    available_usd: usd,
  })
  .meta({ id: 'Budget' });

export const BudgetDeletedSchema = z
  .strictObject({
    object: z.literal('budget'),
    scope: z.string(),
    window: z.enum(BUDGET_WINDOWS),
    limit_micro_usd: z.null(),
    deleted: z.literal(true),
  })
  .meta({ id: 'BudgetDeleted' });

export const BudgetListSchema = z
  .strictObject({ object: z.literal('list'), data: z.array(BudgetViewSchema) })
  .meta({ id: 'BudgetList' });

const costTotals = {
  seconds: z.number(),
  jobs: z
    .int()
    .describe(
      'billed runs: a job counts once, plus once per billed failed attempt it retried and per re-run',
    ),
  micro_usd: micro,
  usd,
  billing_mismatches: z.int().describe("jobs whose kept output's duration was not what was billed"),
  duplicates: z
    .int()
    .describe('second provider tasks of a job that were billed (charged as duplicate lines)'),
  duplicate_micro_usd: micro.describe('what those duplicates cost: included in micro_usd, as in the bill'),
};

export const CostReportSchema = z
  .strictObject({
    object: z.literal('cost_report'),
    from: z.string(),
    to: z.string(),
    group_by: z.array(z.enum(['day', 'month', 'resolution', 'tenant', 'batch'])),
    source: z
      .enum(['history', 'live'])
      .describe(
        "history: the ledger's line items in PostgreSQL (with those not archived yet); live: the Redis counters, while the database is unreachable",
      ),
    rows: z.array(
      z.strictObject({
        day: z.string().nullable().optional(),
        month: z.string().nullable().optional(),
        resolution: z.string().nullable().optional(),
        tenant: z.string().nullable().optional(),
        batch: z.string().nullable().optional(),
        ...costTotals,
      }),
    ),
    total: z.strictObject(costTotals),
    prices: z.strictObject({ version: z.string(), micro_usd_per_second: z.record(z.string(), z.int()) }),
  })
  .meta({ id: 'CostReport' });

export const TenantViewSchema = z
  .strictObject({
    object: z.literal('tenant'),
    id: z.string(),
    weight: z.number(),
    waiting_dispatch: z.int(),
  })
  .meta({ id: 'Tenant' });

export const StatsSchema = z
  .strictObject({
    object: z.literal('stats'),
    tenant: z.string().nullable(),
    jobs: z.strictObject({ by_state: z.strictObject(countsShape), total: z.int() }),
    provider: z.strictObject({
      in_flight: z.int(),
      max_in_flight: z.int().nullable(),
      submits_in_window: z.int(),
      submits_per_window: z.int().nullable(),
      window_ms: z.int(),
    }),
    eta: EtaSchema.describe('when everything in line now should be done, or why it cannot move'),
    processing: z
      .array(
        z.strictObject({
          kind: z.string().describe('`<resolution>|std` or `<resolution>|turbo`, or `all`'),
          ms_per_output_second: z.int(),
          output_seconds_per_task: z.number(),
          turnaround_ms: z
            .int()
            .describe('how long a task holds its in-flight slot beyond the provider time'),
          tasks: z.int().describe('completed tasks the moving figure was learnt from (0: the default)'),
          source: z.enum(['observed', 'default']),
        }),
      )
      .describe('processing time per output second observed on completed tasks, as ETAs use it'),
    budgets: z.array(
      z.strictObject({
        scope: z.string(),
        window: z.enum(BUDGET_WINDOWS),
        period: z.string(),
        limit_micro_usd: micro,
        used_micro_usd: micro,
        reserved_micro_usd: micro,
        spent_micro_usd: micro,
        utilisation: z.number(),
      }),
    ),
    spend_today: z.strictObject({
      day: z.string(),
      by_resolution: z.array(
        z.strictObject({ resolution: z.string(), seconds: z.number(), jobs: z.int(), micro_usd: micro, usd }),
      ),
      total_micro_usd: micro,
      total_usd: usd,
    }),
    archive: z
      .strictObject({
        backlog: z.strictObject({ jobs: z.int(), charges: z.int(), batches: z.int() }),
        oldest_queued_seconds: z.int().nullable(),
      })
      .describe('what waits to be written to PostgreSQL; it grows while the database is unreachable'),
  })
  .meta({ id: 'Stats' });

export const ApiKeyViewSchema = z
  .strictObject({
    object: z.literal('api_key'),
    id: z.string(),
    name: z.string(),
    role: z.enum(ROLES),
    tenant: z.string(),
    prefix: z.string(),
    created_at: time,
    revoked_at: time.nullable(),
  })
  .meta({ id: 'ApiKey' });

export const ApiKeyCreatedSchema = ApiKeyViewSchema.extend({
  key: z.string().describe('the key itself: shown once, never stored'),
}).meta({ id: 'ApiKeyCreated' });

export const ApiKeyListSchema = z
  .strictObject({ object: z.literal('list'), data: z.array(ApiKeyViewSchema) })
  .meta({ id: 'ApiKeyList' });

export const FileViewSchema = z
  .strictObject({
    object: z.literal('file'),
    uri: z.string().describe('use it as `video` or in `images`'),
    sha256: z.string(),
    size: z.int(),
    content_type: z.string(),
    kind: z.enum(['video', 'image']),
    seconds: z.number().nullable(),
    uploaded_at: time,
    deduped: z.boolean().describe('the same bytes had been uploaded before'),
  })
  .meta({ id: 'File' });

/** What this deployment accepts, so a client can refuse what is too large before sending it. */
export const LimitsSchema = z
  .strictObject({
    manifest: z.strictObject({ max_bytes: z.int(), max_rows: z.int(), max_line_bytes: z.int() }),
    uploads: z
      .strictObject({ max_video_bytes: z.int(), max_image_bytes: z.int(), max_data_uri_bytes: z.int() })
      .nullable()
      .describe('null when file uploads are off (no provider key on the API)'),
    max_images: z.int(),
    max_metadata_bytes: z.int().describe('largest serialized metadata of a job (and of a batch)'),
  })
  .meta({ id: 'Limits' });

/** Who the key is: what a client shows (a viewer's page offers no actions; the API refuses them anyway). */
export const PrincipalViewSchema = z
  .strictObject({
    object: z.literal('principal'),
    key_id: z.string(),
    role: z.enum(ROLES),
    tenant: z.string().describe("the tenant this request acts for (an admin's X-Tenant, else the key's own)"),
    all_tenants: z.boolean().describe('reads and acts across tenants (admin keys)'),
    can_write: z.boolean().describe('may submit, cancel and retry (admin and submitter keys)'),
    can_admin: z.boolean().describe('may set budgets, weights and keys (admin keys)'),
  })
  .meta({ id: 'Principal' });

/** The error answers a route can give, by status, each with the one error body. */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorBodySchema> {
  return Object.fromEntries(statuses.map((s) => [s, ErrorBodySchema]));
}

export const CostAuditSchema = z
  .strictObject({
    object: z.literal('cost_audit'),
    from: z.string(),
    to: z.string(),
    complete: z
      .boolean()
      .describe("false when the provider's task list could not be read to the start of the window in time"),
    provider: z.strictObject({ tasks: z.int(), billed_tasks: z.int(), micro_usd: micro }),
    ledger: z.strictObject({ charges: z.int(), micro_usd: micro }),
    unaccounted_micro_usd: micro.describe(
      'billed by the provider with no (or a smaller) charge in the ledger',
    ),
    difference_micro_usd: z.int().describe('the ledger minus the provider over the window'),
    tasks_without_charge: z.array(
      z.strictObject({
        task_id: z.string(),
        job_id: z.string(),
        attempt: z.string().nullable(),
        seconds: z.number(),
        micro_usd: micro,
      }),
    ),
    charges_without_task: z.array(
      z.strictObject({
        charge_id: z.string(),
        job_id: z.string(),
        task_id: z.string().nullable(),
        micro_usd: micro,
      }),
    ),
    mismatched: z.array(
      z.strictObject({
        task_id: z.string(),
        charge_id: z.string(),
        billed_seconds: z.number(),
        charged_seconds: z.number(),
        provider_micro_usd: micro,
        ledger_micro_usd: micro,
      }),
    ),
  })
  .meta({ id: 'CostAudit' });
