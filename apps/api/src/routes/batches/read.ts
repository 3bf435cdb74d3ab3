import { Readable } from 'node:stream';
import { type BatchView, loadBatchView } from '@recast/core/batches';
import {
  BATCH_STATUSES,
  BatchCancelledSchema,
  BatchListSchema,
  BatchRetriedSchema,
  BatchViewSchema,
  errorResponses,
  JOB_STATES,
  JobListSchema,
  jobView,
} from '@recast/core/contract';
import { AppError, parseOrThrow } from '@recast/core/errors';
import { isBatchId } from '@recast/core/model';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { sendCacheable } from '../../etag.js';
import { canSee, tenantOf } from '../../tenant.js';
import { resultLine, resultsCsvHeader, resultsCsvRow } from './results.js';

const IdParams = z.strictObject({ id: z.string().describe('batch id (bat_…)') });
const NotModified = z.null().describe('not modified: the If-None-Match tag is current');

const ListSchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().optional(),
  status: z.enum(BATCH_STATUSES, { message: `must be one of ${BATCH_STATUSES.join(', ')}` }).optional(),
});

const JobsPageSchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().regex(/^\d+$/, 'must be a cursor from a previous page').optional(),
  state: z.enum(JOB_STATES, { message: `must be one of ${JOB_STATES.join(', ')}` }).optional(),
});

const ResultsSchema = z.strictObject({
  only: z.enum(['failed'], { message: 'must be "failed"' }).optional(),
});

const RetrySchema = z.strictObject({
  include_cancelled: z.enum(['true', 'false'], { message: 'must be true or false' }).default('false'),
});

/** Reading a batch, its jobs and results; cancelling and retrying it. Thin: core does the work. */
export default async function batchReadRoutes(app: FastifyInstance) {
  /** The caller's batch, or 404 (another tenant's batch is indistinguishable from a missing one). */
  async function load(request: FastifyRequest<{ Params: { id: string } }>): Promise<BatchView> {
    const { id } = request.params;
    // Live (Redis) or archived (PostgreSQL): the same view either way.
    const view = isBatchId(id) ? await app.recast.records.batch(id) : undefined;
    if (!view || !canSee(request, view.tenant)) {
      throw new AppError('NOT_FOUND', `batch ${id} not found`, { statusCode: 404 });
    }
    return view;
  }

  /** Retry and cancel act on live rows; a batch that has left Redis is finished for good. */
  async function loadLive(request: FastifyRequest<{ Params: { id: string } }>): Promise<BatchView> {
    const view = await load(request);
    if ((await app.recast.redis.exists(app.recast.keys.batch(view.id))) === 0) {
      throw new AppError(
        'BATCH_ARCHIVED',
        `batch ${view.id} finished at ${view.finished_at ?? 'an earlier time'} and is archived: its rows can no longer be re-run or cancelled here; submit the rows again (GET /v1/batches/${view.id}/results?only=failed lists them)`,
        { statusCode: 409, details: { status: view.status } },
      );
    }
    return view;
  }

  app.get<{ Params: { id: string } }>(
    '/v1/batches/:id',
    {
      schema: {
        tags: ['batches'],
        summary: 'Get a batch: status, counts by state, cost, seconds (O(1))',
        params: IdParams,
        headers: z.object({
          'if-none-match': z
            .string()
            .optional()
            .describe('the ETag of the version you have: 304 while it is current'),
        }),
        response: { 200: BatchViewSchema, 304: NotModified, ...errorResponses(401, 404, 429) },
      },
    },
    async (request, reply) => sendCacheable(request, reply, await load(request)),
  );

  app.get(
    '/v1/batches',
    {
      schema: {
        tags: ['batches'],
        summary: 'List batches, newest first',
        querystring: ListSchema,
        response: { 200: BatchListSchema, 304: NotModified, ...errorResponses(400, 401, 429) },
      },
    },
    async (request, reply) => {
      const page = parseOrThrow(ListSchema, request.query, 'query');
      const data: BatchView[] = [];
      let cursor = page.cursor;
      let more = true;
      // Statuses are derived from counters, so a status filter reads ahead, a page at a time.
      for (let rounds = 0; data.length < page.limit && more && rounds < 50; rounds++) {
        const ids = await app.recast.records.batchIds(tenantOf(request), page.limit, cursor);
        more = ids.length === page.limit;
        for (const id of ids) {
          cursor = id;
          const view = await app.recast.records.batch(id);
          if (!view || (page.status && view.status !== page.status)) continue;
          data.push(view);
          if (data.length >= page.limit) break;
        }
      }
      // A filtered read that stopped reading ahead before the end still has a next page (perhaps
      // short, or empty): only the end of the listing answers null.
      return sendCacheable(request, reply, {
        object: 'list',
        data,
        next_cursor: data.length >= page.limit || more ? (cursor ?? null) : null,
      });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/batches/:id/jobs',
    {
      schema: {
        tags: ['batches'],
        summary: "A batch's jobs in row order",
        params: IdParams,
        querystring: JobsPageSchema,
        response: { 200: JobListSchema, ...errorResponses(400, 401, 404, 429) },
      },
    },
    async (request) => {
      const batch = await load(request);
      const page = parseOrThrow(JobsPageSchema, request.query, 'query');
      const data: ReturnType<typeof jobView>[] = [];
      let after = page.cursor ? Number(page.cursor) : 0;
      let ended = false;
      for (let rounds = 0; data.length < page.limit && !ended && rounds < 100; rounds++) {
        const jobs = await app.recast.records.batchJobs(batch.id, after, page.limit);
        ended = jobs.length < page.limit;
        for (const job of jobs) {
          after = job.line ?? after;
          if (page.state && job.state !== page.state) continue;
          data.push(jobView(job));
          if (data.length >= page.limit) break;
        }
      }
      // As for batches: a state filter that read ahead as far as it may still names the next page.
      return {
        object: 'list',
        data,
        next_cursor: data.length >= page.limit || !ended ? String(after) : null,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/batches/:id/results',
    {
      schema: {
        tags: ['batches'],
        summary: 'Stream one result line per row (JSONL, or CSV with Accept: text/csv)',
        description:
          'Each line: custom_id, line, job_id, state, output_video_url, seconds, cost_micro_usd, error.',
        params: IdParams,
        querystring: ResultsSchema,
        produces: ['application/x-ndjson', 'text/csv'],
        response: {
          200: z.string().describe('one JSON object (or CSV record) per line'),
          ...errorResponses(400, 401, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const batch = await load(request);
      const { only } = parseOrThrow(ResultsSchema, request.query, 'query');
      const csv = (request.headers.accept ?? '').includes('text/csv');
      const records = app.recast.records;
      // Streamed in row order, 500 records at a time: a 100,000-row batch never sits in memory.
      async function* lines() {
        if (csv) yield resultsCsvHeader();
        for await (const job of records.eachBatchJob(batch.id)) {
          if (only === 'failed' && job.state !== 'failed') continue;
          yield csv ? resultsCsvRow(job) : resultLine(job);
        }
      }
      void reply.header('content-type', csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
      return reply.send(Readable.from(lines()));
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/batches/:id/retry',
    {
      schema: {
        tags: ['batches'],
        summary: 'Run failed (and optionally cancelled) rows again',
        params: IdParams,
        querystring: RetrySchema,
        response: { 202: BatchRetriedSchema, ...errorResponses(400, 401, 403, 404, 409, 429) },
      },
      config: { access: 'write' },
    },
    async (request, reply) => {
      const batch = await loadLive(request);
      const { include_cancelled } = parseOrThrow(RetrySchema, request.query, 'query');
      const result = await app.recast.engine.retryBatch(batch.id, batch.tenant, {
        includeCancelled: include_cancelled === 'true',
      });
      request.log.info({ batchId: batch.id, tenant: batch.tenant, ...result }, 'batch retry requested');
      return reply.status(202).send({ ...(await loadBatchView(app.recast, batch.id)), retry: result });
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/batches/:id/cancel',
    {
      schema: {
        tags: ['batches'],
        summary: 'Cancel every unfinished row',
        params: IdParams,
        response: { 202: BatchCancelledSchema, ...errorResponses(401, 403, 404, 409, 429) },
      },
      config: { access: 'write' },
    },
    async (request, reply) => {
      const batch = await loadLive(request);
      const { tally, view } = await app.recast.engine.cancelBatch(batch.id, batch.tenant);
      request.log.info({ batchId: batch.id, tenant: batch.tenant, ...tally }, 'batch cancel requested');
      return reply.status(202).send({ ...view, cancel: tally });
    },
  );
}
