import { Readable } from 'node:stream';
import {
  AppError,
  type BatchCounts,
  type BatchRecord,
  batchStatus,
  batchView,
  cancelJob,
  costReport,
  enqueueJobCallback,
  formatFromContentType,
  ingestBatch,
  isBatchId,
  JOB_STATES,
  jobView,
  type ManifestLimits,
  parseOrThrow,
  retryBatch,
  usdToMicroUsd,
  utcDay,
} from '@recast/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { tenantOf } from '../../tenant.js';
import { resultLine, resultsCsvHeader, resultsCsvRow } from './results.js';

export interface BatchRoutesOptions {
  manifest: ManifestLimits;
}

const jsonParam = (what: string) =>
  z
    .string()
    .transform((v, ctx) => {
      try {
        const parsed: unknown = JSON.parse(v);
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
          return parsed as Record<string, unknown>;
      } catch {
        // reported below
      }
      ctx.addIssue({ code: 'custom', message: `must be a JSON object (${what})` });
      return z.NEVER;
    })
    .optional();

const CreateQuerySchema = z.strictObject({
  name: z.string().max(200).optional(),
  metadata: jsonParam('metadata'),
  defaults: jsonParam('fields applied to every row'),
  max_cost_usd: z.coerce
    .number({ message: 'must be a number of dollars' })
    .refine((v) => usdToMicroUsd(v) !== undefined, { message: 'must be 0-1e9 with at most 6 decimals' })
    .optional(),
  callback_url: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).optional(),
  mode: z.enum(['atomic', 'partial'], { message: 'must be "atomic" or "partial"' }).default('atomic'),
  dry_run: z.enum(['true', 'false'], { message: 'must be true or false' }).default('false'),
});

const PageSchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().optional(),
  status: z.string().optional(),
  state: z.enum(JOB_STATES, { message: `must be one of ${JOB_STATES.join(', ')}` }).optional(),
});

export default async function batchRoutes(app: FastifyInstance, options: BatchRoutesOptions) {
  // Manifests are read as streams by the parser (which enforces the byte limit), never buffered.
  app.addContentTypeParser(['application/x-ndjson', 'application/jsonl', 'text/csv'], (_req, payload, done) =>
    done(null, payload),
  );
  // An answer sent before the upload was read to its end (a limit passed, a bad parameter) closes
  // the connection: the rest of the body is not worth reading, and a half-read request left on a
  // keep-alive socket would hold it open, and the server's shutdown with it.
  app.addHook('onSend', async (request, reply) => {
    if (!request.raw.complete) void reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request) => {
    if (!request.raw.complete) request.raw.socket?.destroy();
  });

  async function load(request: FastifyRequest<{ Params: { id: string } }>) {
    const { id } = request.params;
    const found = isBatchId(id) ? await app.recast.batches.get(id) : undefined;
    if (!found || found.batch.tenant !== tenantOf(request) || found.batch.stored_status === 'validating') {
      throw new AppError('NOT_FOUND', `batch ${id} not found`, { statusCode: 404 });
    }
    return found;
  }

  async function view(batch: BatchRecord, counts: BatchCounts) {
    const usage = await app.recast.budgets.usage(`batch:${batch.id}`, 'lifetime');
    const billed = await costReport(app.recast.redis, app.recast.keys, {
      from: batch.created_at.slice(0, 10),
      to: utcDay(new Date()),
      groupBy: ['resolution'],
      batch: batch.id,
    }).catch(() => undefined);
    return batchView(batch, counts, {
      ...usage,
      billed_seconds: Object.fromEntries(
        (billed?.rows ?? []).map((r) => [r.resolution as string, r.seconds]),
      ),
    });
  }

  app.post('/v1/batches', async (request, reply) => {
    const query = parseOrThrow(CreateQuerySchema, request.query, 'query');
    const format = formatFromContentType(request.headers['content-type']);
    if (!format) {
      throw new AppError('VALIDATION_FAILED', 'a manifest is application/x-ndjson (JSONL) or text/csv', {
        statusCode: 415,
        issues: [{ path: 'content-type', message: 'must be application/x-ndjson or text/csv' }],
      });
    }
    const { batchId, quote } = await ingestBatch(
      app.recast,
      {
        tenant: tenantOf(request),
        mode: query.mode,
        dry_run: query.dry_run === 'true',
        ...(query.name ? { name: query.name } : {}),
        ...(query.metadata ? { metadata: query.metadata } : {}),
        ...(query.defaults ? { defaults: query.defaults } : {}),
        ...(query.callback_url ? { callback_url: query.callback_url } : {}),
        ...(query.max_cost_usd !== undefined
          ? { max_cost_micro_usd: usdToMicroUsd(query.max_cost_usd) as number }
          : {}),
      },
      request.body as AsyncIterable<Buffer>,
      format,
      options.manifest,
    );
    if (!batchId) return reply.status(200).send({ object: 'batch_quote', ...quote });
    const found = await app.recast.batches.get(batchId);
    request.log.info({ batchId, tenant: tenantOf(request), rows: quote.rows }, 'batch accepted');
    void reply.header('location', `/v1/batches/${batchId}`);
    return reply.status(202).send({
      ...(await view(found!.batch, found!.counts)),
      errors: quote.errors,
      errors_truncated: quote.errors_truncated,
    });
  });

  app.get<{ Params: { id: string } }>('/v1/batches/:id', async (request) => {
    const { batch, counts } = await load(request);
    return view(batch, counts);
  });

  app.get('/v1/batches', async (request) => {
    const page = parseOrThrow(PageSchema, request.query, 'query');
    const data: unknown[] = [];
    let cursor = page.cursor;
    // Filter by status after reading (statuses are derived); read ahead in pages until full.
    for (let rounds = 0; data.length < page.limit && rounds < 50; rounds++) {
      const ids = await app.recast.batches.list(tenantOf(request), page.limit, cursor);
      if (ids.length === 0) break;
      for (const id of ids) {
        cursor = id;
        const found = await app.recast.batches.get(id);
        if (!found || found.batch.stored_status === 'validating') continue;
        if (page.status && batchStatus(found.batch, found.counts) !== page.status) continue;
        data.push(await view(found.batch, found.counts));
        if (data.length >= page.limit) break;
      }
    }
    return { object: 'list', data, next_cursor: data.length >= page.limit ? (cursor ?? null) : null };
  });

  app.get<{ Params: { id: string } }>('/v1/batches/:id/jobs', async (request) => {
    const { batch } = await load(request);
    const page = parseOrThrow(PageSchema, request.query, 'query');
    const data: unknown[] = [];
    let after = page.cursor ? Number(page.cursor) : 0;
    for (let rounds = 0; data.length < page.limit && rounds < 100; rounds++) {
      const jobs = await app.recast.batches.jobs(batch.id, after, page.limit);
      if (jobs.length === 0) break;
      for (const job of jobs) {
        after = job.line ?? after;
        if (page.state && job.state !== page.state) continue;
        data.push(jobView(job));
        if (data.length >= page.limit) break;
      }
    }
    return { object: 'list', data, next_cursor: data.length >= page.limit ? String(after) : null };
  });

  app.get<{ Params: { id: string }; Querystring: { only?: string } }>(
    '/v1/batches/:id/results',
    async (request, reply) => {
      const { batch } = await load(request);
      const onlyFailed = request.query.only === 'failed';
      const csv = (request.headers.accept ?? '').includes('text/csv');
      const batches = app.recast.batches;
      async function* lines() {
        if (csv) yield resultsCsvHeader();
        let after = 0;
        for (;;) {
          const jobs = await batches.jobs(batch.id, after, 500);
          if (jobs.length === 0) return;
          for (const job of jobs) {
            after = job.line ?? after;
            if (onlyFailed && job.state !== 'failed') continue;
            yield csv ? resultsCsvRow(job) : resultLine(job);
          }
        }
      }
      void reply.header('content-type', csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
      return reply.send(Readable.from(lines()));
    },
  );

  app.post<{ Params: { id: string }; Querystring: { include_cancelled?: string } }>(
    '/v1/batches/:id/retry',
    async (request, reply) => {
      const { batch } = await load(request);
      const includeCancelled = request.query.include_cancelled === 'true';
      const result = await retryBatch(app.recast, batch.id, batch.tenant, { includeCancelled });
      request.log.info({ batchId: batch.id, tenant: batch.tenant, ...result }, 'batch retry requested');
      const found = await app.recast.batches.get(batch.id);
      return reply.status(202).send({ ...(await view(found!.batch, found!.counts)), retry: result });
    },
  );

  app.post<{ Params: { id: string } }>('/v1/batches/:id/cancel', async (request, reply) => {
    const { batch } = await load(request);
    await app.recast.batches.setStoredStatus(batch.id, 'cancelling');
    const tally = { cancelled_before_spend: 0, cancelling_at_provider: 0, already_finished: 0 };
    let after = 0;
    for (;;) {
      const jobs = await app.recast.batches.jobs(batch.id, after, 500);
      if (jobs.length === 0) break;
      for (const job of jobs) {
        after = job.line ?? after;
        try {
          const { job: now } = await cancelJob(
            {
              ...app.recast,
              onMoneyFreed: () =>
                app.recast.redis.set(app.recast.keys.unparkWake(), '1').then(() => undefined),
              onTerminal: (cancelled) =>
                enqueueJobCallback(app.recast.notify, cancelled).then(() => undefined),
            },
            batch.tenant,
            job.id,
          );
          if (now.state === 'cancelled') tally.cancelled_before_spend++;
          else tally.cancelling_at_provider++;
        } catch (err) {
          if (err instanceof AppError && err.code === 'JOB_FINISHED') tally.already_finished++;
          else throw err;
        }
      }
    }
    request.log.info({ batchId: batch.id, tenant: batch.tenant, ...tally }, 'batch cancel requested');
    const found = await app.recast.batches.get(batch.id);
    return reply.status(202).send({ ...(await view(found!.batch, found!.counts)), cancel: tally });
  });
}
