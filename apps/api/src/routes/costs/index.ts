import { Readable } from 'node:stream';
import { CostAuditSchema, CostReportSchema, errorResponses } from '@recast/core/contract';
import { AppError, parseOrThrow } from '@recast/core/errors';
import { auditBooks, historyCostReport, type LineItem, lineItems } from '@recast/core/history';
import { COST_GROUPS, costReport, utcDay } from '@recast/core/money';
import { stringify } from 'csv-stringify/sync';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { isAdmin, tenantOf } from '../../tenant.js';

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const day = () => z.string().regex(DAY, 'must be a UTC day, YYYY-MM-DD');

const CostQuerySchema = z.strictObject({
  from: day().optional(),
  to: day().optional(),
  group_by: z
    .string()
    .default('resolution')
    .transform((v) =>
      v
        .split(',')
        .map((g) => g.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(COST_GROUPS, { message: `each must be one of ${COST_GROUPS.join(', ')}` }))),
  tenant: z.string().min(1).optional(),
  batch: z.string().min(1).optional(),
});

const ItemsQuerySchema = z.strictObject({
  from: day().optional(),
  to: day().optional(),
  tenant: z.string().min(1).optional(),
  batch: z.string().min(1).optional(),
});

/** An instant: an ISO 8601 time with its offset, or a UTC day (its midnight). */
const instant = () =>
  z
    .string()
    .refine((v) => DAY.test(v) || !Number.isNaN(Date.parse(v)), {
      message: 'must be an ISO 8601 time (2026-12-01T00:00:00Z) or a UTC day (YYYY-MM-DD)',
    })
    .transform((v) => new Date(DAY.test(v) ? `${v}T00:00:00Z` : v));

const AuditQuerySchema = z.strictObject({ from: instant().optional(), to: instant().optional() });

/** Longest window one audit reads from the provider's task list. */
const MAX_AUDIT_DAYS = 31;

/** The line item columns, in the order the CSV gives them (and JSONL keys them). */
const ITEM_COLUMNS = [
  'charge_id',
  'job_id',
  'attempt',
  'task_id',
  'tenant',
  'batch_id',
  'resolution',
  'billed_ms',
  'micro_usd',
  'price_version',
  'kind',
  'day',
  'charged_at',
  'archived',
] as const satisfies readonly (keyof (LineItem & { archived: boolean }))[];

/**
 * Money: the spend report (from the ledger's line items in PostgreSQL, plus what is not archived
 * yet; the live Redis counters while the database is out of reach), the line items themselves for
 * finance, and the audit of the books against the provider's own task list.
 */
export default async function costRoutes(app: FastifyInstance) {
  const monthSoFar = () => {
    const today = utcDay(new Date());
    return { from: `${today.slice(0, 7)}-01`, to: today };
  };

  app.get(
    '/v1/costs',
    {
      schema: {
        tags: ['money'],
        summary: 'Actual spend: seconds, jobs and micro-dollars, grouped',
        description:
          'Between two UTC days (default: this month so far), grouped by any of day, month, resolution, tenant, batch. Computed from the line items in PostgreSQL plus the charges not archived yet (`source: "history"`); while the database is unreachable, from the live Redis counters (`source: "live"`).',
        querystring: CostQuerySchema,
        response: { 200: CostReportSchema, ...errorResponses(400, 401, 429) },
      },
    },
    async (request) => {
      const query = parseOrThrow(CostQuerySchema, request.query, 'query');
      const range = monthSoFar();
      // A tenant's report covers its own spend only; an admin may look at anyone's, or everyone's.
      const tenant = isAdmin(request) ? query.tenant : tenantOf(request);
      const costQuery = {
        from: query.from ?? range.from,
        to: query.to ?? range.to,
        groupBy: query.group_by,
        ...(tenant ? { tenant } : {}),
        ...(query.batch ? { batch: query.batch } : {}),
      };
      const { db, redis, keys } = app.recast;
      const report = db
        ? await historyCostReport(db, redis, keys, costQuery)
        : { ...(await costReport(redis, keys, costQuery)), source: 'live' as const };
      return {
        object: 'cost_report',
        ...report,
        prices: {
          version: app.recast.prices.version,
          micro_usd_per_second: app.recast.prices.micro_usd_per_second,
        },
      };
    },
  );

  app.get(
    '/v1/costs/items',
    {
      schema: {
        tags: ['money'],
        summary: "Stream the ledger's line items (JSONL, or CSV with Accept: text/csv)",
        description: `One line per charge between two UTC days (inclusive; default this month so far), in (day, charge id) order: ${ITEM_COLUMNS.join(', ')}. \`kind\` is \`run\` (the task that finished the job), \`retried_failure\` (a billed failed task that was retried) or \`duplicate\` (a second billed task of one attempt); \`archived\` is false for a charge recorded in Redis and not yet written to PostgreSQL. A tenant key sees its own tenant's items only.`,
        querystring: ItemsQuerySchema,
        produces: ['application/x-ndjson', 'text/csv'],
        response: {
          200: z.string().describe('one JSON object (or CSV record) per line item'),
          ...errorResponses(400, 401, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const query = parseOrThrow(ItemsQuerySchema, request.query, 'query');
      const range = monthSoFar();
      const tenant = isAdmin(request) ? query.tenant : tenantOf(request);
      const from = query.from ?? range.from;
      const to = query.to ?? range.to;
      if (from > to) {
        throw new AppError('VALIDATION_FAILED', 'from: must not be after to', {
          statusCode: 400,
          issues: [{ path: 'from', message: `${from} is after ${to}` }],
        });
      }
      const { db, redis, keys } = app.recast;
      if (!db) {
        throw new AppError('DATABASE_UNAVAILABLE', 'line items need the history database (DATABASE_URL)', {
          statusCode: 503,
          retryable: true,
        });
      }
      const items = lineItems(db, redis, keys, { from, to, tenant, batch: query.batch });
      // The first page is read before the status line, so a database that is down is a clean 503
      // rather than a 200 cut short.
      const first = await items.next();
      const csv = (request.headers.accept ?? '').includes('text/csv');
      async function* lines() {
        if (csv) yield stringify([[...ITEM_COLUMNS]]);
        let next = first;
        while (!next.done) {
          const item = next.value;
          yield csv
            ? stringify([ITEM_COLUMNS.map((c) => item[c])], { cast: { boolean: (b) => String(b) } })
            : `${JSON.stringify(Object.fromEntries(ITEM_COLUMNS.map((c) => [c, item[c]])))}\n`;
          next = await items.next();
        }
      }
      void reply
        .header('content-type', csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson')
        .header(
          'content-disposition',
          `inline; filename="recast-costs-${from}-${to}.${csv ? 'csv' : 'jsonl'}"`,
        );
      return reply.send(Readable.from(lines()));
    },
  );

  app.get(
    '/v1/costs/audit',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['money'],
        summary: "Check the ledger against the provider's task list (admin)",
        description: `Reads the provider's tasks created in the window (default the last 24 hours; at most ${MAX_AUDIT_DAYS} days) whose webhook points at this deployment's receiver (PUBLIC_URL) with a valid token, and compares them with the ledger's line items: billed tasks with no charge, charges with no task, tasks billed for other seconds than charged, and the totals. \`complete: false\` when the task list could not be read to the start of the window in time.`,
        querystring: AuditQuerySchema,
        response: { 200: CostAuditSchema, ...errorResponses(400, 401, 403, 429, 503) },
      },
    },
    async (request) => {
      const query = parseOrThrow(AuditQuerySchema, request.query, 'query');
      const to = query.to ?? new Date();
      const from = query.from ?? new Date(to.getTime() - 24 * 3600_000);
      const days = (to.getTime() - from.getTime()) / 86_400_000;
      if (!(days > 0) || days > MAX_AUDIT_DAYS) {
        throw new AppError(
          'VALIDATION_FAILED',
          `from: the window must be positive and at most ${MAX_AUDIT_DAYS} days`,
          {
            statusCode: 400,
            issues: [{ path: 'from', message: `${from.toISOString()} .. ${to.toISOString()}` }],
          },
        );
      }
      const { db, redis, keys, provider, config, prices } = app.recast;
      if (!provider) {
        throw new AppError(
          'AUDIT_UNAVAILABLE',
          'the audit reads the provider: this API has no INFERENCE_API_KEY',
          {
            statusCode: 503,
          },
        );
      }
      if (!db) {
        throw new AppError('DATABASE_UNAVAILABLE', 'the audit needs the history database (DATABASE_URL)', {
          statusCode: 503,
          retryable: true,
        });
      }
      return auditBooks(db, redis, keys, {
        client: provider,
        publicUrl: config.PUBLIC_URL,
        webhookSecret: config.WEBHOOK_SECRET,
        prices,
        from,
        to,
      });
    },
  );
}
