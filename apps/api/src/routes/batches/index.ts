import multipart from '@fastify/multipart';
import { ingestBatch, loadBatchView } from '@recast/core/batches';
import { BatchAcceptedSchema, BatchQuoteSchema, errorResponses } from '@recast/core/contract';
import { AppError, parseOrThrow } from '@recast/core/errors';
import {
  formatFromContentType,
  JSONL_TYPES,
  type ManifestFormat,
  type ManifestLimits,
} from '@recast/core/manifests';
import { metadataSchema, readJsonText } from '@recast/core/model';
import { usdToMicroUsd } from '@recast/core/money';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { closeAfterEarlyAnswers } from '../../early-answer.js';
import { tenantOf } from '../../tenant.js';
import batchReadRoutes from './read.js';

export interface BatchRoutesOptions {
  manifest: ManifestLimits;
}

/** A JSON object given as a parameter, read like any JSON body (`__proto__` is a reserved key). */
const jsonParam = (what: string) =>
  z.string().transform((v, ctx) => {
    const read = readJsonText(v);
    if (!read.ok && read.issue.message === 'reserved key') {
      ctx.addIssue({ code: 'custom', message: 'reserved key', path: read.issue.path.split('.') });
      return z.NEVER;
    }
    if (read.ok && read.value && typeof read.value === 'object' && !Array.isArray(read.value))
      return read.value as Record<string, unknown>;
    ctx.addIssue({ code: 'custom', message: `must be a JSON object (${what})` });
    return z.NEVER;
  });

/** Batch-level fields, from the query string or (multipart) form fields before the file. */
const batchParamsSchema = (maxMetadataBytes: number) =>
  z.strictObject({
    name: z.string().max(200, 'must be at most 200 characters').optional(),
    // The batch's own metadata: the same depth and size limits as a job's.
    metadata: jsonParam('metadata').pipe(metadataSchema(maxMetadataBytes)).optional(),
    defaults: jsonParam('fields applied to every row').optional(),
    max_cost_usd: z.coerce
      .number({ message: 'must be a number of dollars' })
      .refine((v) => usdToMicroUsd(v) !== undefined, { message: 'must be 0-1e9 with at most 6 decimals' })
      .optional(),
    callback_url: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).optional(),
    // Read by the core (parseCompletionWindow), which names this field in its 400.
    completion_window: z
      .string()
      .max(16, 'must be a whole number of s, m, h or d (e.g. 24h), from 1s to 30d')
      .optional()
      .describe(
        'How long rows may wait to be sent to the provider, from the batch creation (e.g. `24h`, `30m`; 1s to 30d). Rows not yet sent when it closes end `expired`, with no spend; rows already at the provider finish normally.',
      ),
    mode: z.enum(['atomic', 'partial'], { message: 'must be "atomic" or "partial"' }).default('atomic'),
    dry_run: z.enum(['true', 'false'], { message: 'must be true or false' }).default('false'),
  });
type BatchParams = z.infer<ReturnType<typeof batchParamsSchema>>;

const EXTENSIONS: Record<string, ManifestFormat> = { jsonl: 'jsonl', ndjson: 'jsonl', csv: 'csv' };
/** The file part's name in a multipart upload (`file`, or `manifest`). */
const FILE_FIELDS = new Set(['file', 'manifest']);

function unsupported(): AppError {
  return new AppError('UNSUPPORTED_MEDIA_TYPE', 'a manifest is application/x-ndjson (JSONL) or text/csv', {
    statusCode: 415,
    issues: [
      { path: 'content-type', message: 'must be application/x-ndjson, text/csv or multipart/form-data' },
    ],
  });
}

export default async function batchRoutes(app: FastifyInstance, options: BatchRoutesOptions) {
  const limits = options.manifest;
  const BatchParamsSchema = batchParamsSchema(app.recast.limits.maxMetadataBytes);
  // Manifests are read as streams by the parser (which enforces the byte limit), never buffered.
  app.addContentTypeParser([...JSONL_TYPES, 'text/csv'], (_req, payload, done) => done(null, payload));
  // Multipart: one file part (the manifest, streamed like a bare body) and batch fields before it.
  // The parser meters bytes itself and names MANIFEST_MAX_BYTES; busboy's cap sits just above it.
  await app.register(multipart, {
    limits: { files: 1, fields: 16, fieldSize: 64 * 1024, parts: 17, fileSize: limits.maxBytes + 1 },
  });
  // An answer sent before the body was read to its end closes the connection, lingering so the
  // client reads it (see early-answer.ts).
  closeAfterEarlyAnswers(app);

  async function ingest(
    request: FastifyRequest,
    params: BatchParams,
    source: AsyncIterable<Buffer>,
    format: ManifestFormat,
  ) {
    const tenant = tenantOf(request);
    // The batch's jobs are accepted ones: replicated before the answer (REDIS_WAIT_REPLICAS), else
    // a 503. A dry run writes nothing and waits for nothing.
    const durable = params.dry_run === 'true' ? <T>(write: () => Promise<T>) => write() : app.recast.durable;
    return durable(() =>
      ingestBatch(
        app.recast,
        {
          tenant,
          mode: params.mode,
          dry_run: params.dry_run === 'true',
          ...(params.name ? { name: params.name } : {}),
          ...(params.metadata ? { metadata: params.metadata } : {}),
          ...(params.defaults ? { defaults: params.defaults } : {}),
          ...(params.callback_url ? { callback_url: params.callback_url } : {}),
          ...(params.completion_window !== undefined ? { completion_window: params.completion_window } : {}),
          ...(params.max_cost_usd !== undefined
            ? { max_cost_micro_usd: usdToMicroUsd(params.max_cost_usd) as number }
            : {}),
        },
        source,
        format,
        limits,
      ),
    );
  }

  /** The file part and the fields before it; fields after the file are refused (already too late). */
  async function ingestMultipart(request: FastifyRequest) {
    const query = (request.query ?? {}) as Record<string, unknown>;
    const fields: Record<string, unknown> = {};
    for await (const part of request.parts()) {
      if (part.type === 'field') {
        if (part.fieldname in query) {
          throw new AppError('VALIDATION_FAILED', `${part.fieldname} is given twice (query and form field)`, {
            statusCode: 400,
            issues: [{ path: part.fieldname, message: 'give it once, in the query or as a form field' }],
          });
        }
        fields[part.fieldname] = part.value;
        continue;
      }
      if (!FILE_FIELDS.has(part.fieldname)) {
        throw new AppError('VALIDATION_FAILED', `unexpected file field ${part.fieldname}`, {
          statusCode: 400,
          issues: [{ path: part.fieldname, message: 'the manifest goes in a file field named "file"' }],
        });
      }
      const extension = part.filename.split('.').pop()?.toLowerCase() ?? '';
      const format = formatFromContentType(part.mimetype) ?? EXTENSIONS[extension];
      if (!format) throw unsupported();
      const params = parseOrThrow(BatchParamsSchema, { ...query, ...fields }, 'fields');
      return ingest(request, params, part.file, format);
    }
    throw new AppError('VALIDATION_FAILED', 'the multipart upload has no manifest file', {
      statusCode: 400,
      issues: [{ path: 'file', message: 'add the manifest as a file field named "file"' }],
    });
  }

  app.post(
    '/v1/batches',
    {
      schema: {
        tags: ['batches'],
        summary: 'Upload a manifest as a batch (or quote it with dry_run=true)',
        description:
          'Body: application/x-ndjson (JSONL), text/csv, or multipart/form-data with the manifest in a `file` field and these parameters as form fields before it. Streamed; 413 names the limit passed.',
        querystring: BatchParamsSchema,
        response: {
          202: BatchAcceptedSchema,
          200: BatchQuoteSchema,
          ...errorResponses(400, 401, 403, 413, 415, 422, 429, 503),
        },
      },
      config: {
        access: 'write',
        requestBodies: {
          'application/x-ndjson': {
            schema: { type: 'string', description: 'the manifest: one job (JSON) a line' },
          },
          'text/csv': {
            schema: { type: 'string', description: 'the manifest: a header row, then one job a row' },
          },
          'multipart/form-data': {
            schema: {
              type: 'object',
              required: ['file'],
              description: 'the query parameters may also be sent as form fields, before the file',
              properties: {
                file: {
                  type: 'string',
                  format: 'binary',
                  description: 'the manifest (.jsonl, .ndjson or .csv)',
                },
              },
            },
          },
        },
      },
    },
    async (request, reply) => {
      let result: Awaited<ReturnType<typeof ingest>>;
      if (request.isMultipart()) {
        result = await ingestMultipart(request);
      } else {
        const params = parseOrThrow(BatchParamsSchema, request.query, 'query');
        const format = formatFromContentType(request.headers['content-type']);
        if (!format) throw unsupported();
        result = await ingest(request, params, request.body as AsyncIterable<Buffer>, format);
      }
      const { batchId, quote } = result;
      if (!batchId) return reply.status(200).send({ object: 'batch_quote', ...quote });
      const view = await loadBatchView(app.recast, batchId);
      request.log.info({ batchId, tenant: tenantOf(request), rows: quote.rows }, 'batch accepted');
      void reply.header('location', `/v1/batches/${batchId}`);
      return reply
        .status(202)
        .send({ ...view, errors: quote.errors, errors_truncated: quote.errors_truncated });
    },
  );

  await app.register(batchReadRoutes);
}
