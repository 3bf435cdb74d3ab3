import multipart from '@fastify/multipart';
import {
  errorResponses,
  JOB_STATES,
  JobListSchema,
  JobTimelineSchema,
  JobViewSchema,
  jobTimelineView,
  jobView,
} from '@recast/core/contract';
import { AppError, parseOrThrow } from '@recast/core/errors';
import {
  firstDataUriField,
  outputKey,
  type PendingFiles,
  parseByteRange,
  removeAll,
  spoolDataUris,
} from '@recast/core/files';
import type { Logger } from '@recast/core/infra';
import { isJobId, type JobRecord, JobRequestSchema, TenantIdSchema } from '@recast/core/model';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { closeAfterEarlyAnswers } from '../../early-answer.js';
import { notModified, sendCacheable } from '../../etag.js';
import { canSee, isAdmin, tenantOf } from '../../tenant.js';
import { readJobForm } from './job-form.js';

const instant = (what: string) =>
  z.iso
    .datetime({ offset: true, message: `must be an ISO-8601 time (${what})` })
    .transform((v) => new Date(v))
    .optional();

const ListSchema = z.strictObject({
  state: z.enum(JOB_STATES, { message: `must be one of ${JOB_STATES.join(', ')}` }).optional(),
  batch: z
    .string()
    .regex(/^bat_[0-9A-Z]{26}$/, 'must be a batch id')
    .optional(),
  created_from: instant('created at or after'),
  created_to: instant('created before'),
  /** Admins only: one tenant's jobs (an admin sees every tenant's by default). */
  tenant: TenantIdSchema.optional(),
  order: z.enum(['desc', 'asc'], { message: 'must be "desc" (newest first) or "asc"' }).default('desc'),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
});

const IdParams = z.strictObject({ id: z.string().describe('job id (job_…)') });
const ConditionalHeaders = z.object({
  'if-none-match': z
    .string()
    .optional()
    .describe('the ETag of the version you have: 304 while it is current'),
});
const NotModified = z.null().describe('not modified: the If-None-Match tag is current');

/**
 * The tag of a job's current record: its version moves with every state move (transition-2.lua),
 * its notes with every other write (such as a kept output: annotate-1.lua), and updated_at with both.
 */
const jobEtag = (
  id: string,
  version: number | string,
  notes: number | string | null | undefined,
  updatedAt: string,
) => `"${id}.v${version}.n${notes ?? 0}.${Date.parse(updatedAt)}"`;

export interface JobRoutesOptions {
  /** JSON bodies of POST /v1/jobs: the usual limit plus room for data: URIs when uploads are on. */
  jsonBodyLimit: number;
  /** Largest non-file form field (`job`). */
  fieldBytes: number;
  maxImages: number;
}

export default async function jobRoutes(app: FastifyInstance, options: JobRoutesOptions) {
  const files = app.recast.files;
  // Registered here, not on the app: only these routes (and batches, on their own) take forms.
  await app.register(multipart, {
    limits: {
      fields: 4,
      fieldSize: options.fieldBytes,
      files: 1 + options.maxImages,
      // Our per-field limits (core files/spool.ts) answer first, naming the field.
      fileSize: Math.max(files?.limits.maxVideoBytes ?? 0, files?.limits.maxImageBytes ?? 0, 1) + 1,
      parts: 5 + options.maxImages,
    },
  });
  // An answer sent before the body was read to its end closes the connection, lingering so the
  // client reads it (see early-answer.ts).
  closeAfterEarlyAnswers(app);

  /** The caller's job, or 404: another tenant's job, and a staged batch's, do not exist for it. */
  async function visible(
    request: FastifyRequest,
    record: Pick<JobRecord, 'tenant' | 'batch_id'> | undefined,
  ) {
    if (!record || !canSee(request, record.tenant)) return false;
    if (!record.batch_id) return true;
    const status = await app.recast.redis.hget(app.recast.keys.batch(record.batch_id), 'stored_status');
    return status !== 'validating';
  }

  app.post(
    '/v1/jobs',
    {
      bodyLimit: options.jsonBodyLimit,
      config: {
        access: 'write',
        requestBodies: {
          'multipart/form-data': {
            schema: {
              type: 'object',
              required: ['job'],
              properties: {
                job: {
                  type: 'string',
                  contentMediaType: 'application/json',
                  description:
                    'the job as JSON: the fields of an application/json body, without the files sent as parts',
                },
                video: { type: 'string', format: 'binary', description: 'the source video (MP4/MOV)' },
                'images[]': {
                  type: 'array',
                  items: { type: 'string', format: 'binary' },
                  description: 'reference images (JPEG/PNG/WebP), after any `images` URLs in `job`',
                },
              },
            },
            encoding: { job: { contentType: 'application/json' } },
          },
        },
      },
      schema: {
        tags: ['jobs'],
        summary: 'Submit a job',
        description:
          "The app's input plus Recast's fields; unknown fields are refused. An Idempotency-Key header returns the same job for the same body (200) and refuses a different body (422). Also multipart/form-data: a `job` JSON field plus `video` and `images[]` file parts (uploaded to the provider once per content); data: URIs in a JSON body are uploaded the same way.",
        body: JobRequestSchema,
        headers: z.object({ 'idempotency-key': z.string().optional() }),
        response: {
          202: JobViewSchema,
          200: JobViewSchema,
          ...errorResponses(400, 401, 403, 409, 413, 415, 422, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const idempotencyKey = request.headers['idempotency-key'];
      const tenant = tenantOf(request);
      // Only the file paths log with a child (they say several things); a plain JSON job does not pay for one.
      const childLog = () => request.log.child({ tenant }) as unknown as Logger;
      let body: unknown = request.body;
      let pending: PendingFiles = new Map();
      try {
        if (request.isMultipart()) {
          if (!files) throw uploadsOff('video');
          ({ body, files: pending } = await readJobForm(request, files.limits, childLog()));
        } else if (files) {
          ({ body, files: pending } = await spoolDataUris(body, files.limits, childLog()));
        } else {
          const field = firstDataUriField(body);
          if (field) throw uploadsOff(field);
        }
        const { job, created } = await app.recast.engine.submit({
          tenant,
          body,
          files: pending,
          ...(typeof idempotencyKey === 'string' ? { idempotencyKey } : {}),
        });
        request.log.info(
          { jobId: job.id, tenant, created, files: pending.size },
          created ? 'job accepted' : 'idempotent replay',
        );
        void reply.header('location', `/v1/jobs/${job.id}`);
        if (!created) void reply.header('idempotent-replayed', 'true');
        return reply.status(created ? 202 : 200).send(jobView(job));
      } finally {
        await removeAll(pending.values());
      }
    },
  );

  app.get(
    '/v1/jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: 'List jobs',
        description:
          'Newest first (or oldest), cursor-paged, by state, batch, created range; admins: any tenant.',
        querystring: ListSchema,
        response: { 200: JobListSchema, 304: NotModified, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      const query = parseOrThrow(ListSchema, request.query, 'query');
      if (query.tenant !== undefined && !isAdmin(request)) {
        throw new AppError('FORBIDDEN', 'tenant: only an admin key lists other tenants', {
          statusCode: 403,
          issues: [{ path: 'tenant', message: 'this key lists its own tenant only' }],
        });
      }
      if (query.batch !== undefined) {
        // The batch may be live (Redis) or archived (PostgreSQL): the same answer either way.
        const batch = await app.recast.records.batch(query.batch);
        if (!batch || batch.status === 'validating' || !canSee(request, batch.tenant)) {
          throw new AppError('NOT_FOUND', `batch ${query.batch} not found`, { statusCode: 404 });
        }
      }
      const page = await app.recast.records.listJobs({
        tenant: isAdmin(request) ? query.tenant : tenantOf(request),
        order: query.order,
        limit: query.limit,
        ...(query.state ? { state: query.state } : {}),
        ...(query.batch ? { batch: query.batch } : {}),
        ...(query.created_from ? { createdFrom: query.created_from } : {}),
        ...(query.created_to ? { createdTo: query.created_to } : {}),
        ...(query.cursor ? { cursor: query.cursor } : {}),
      });
      return sendCacheable(request, reply, {
        object: 'list',
        data: page.jobs.map(jobView),
        next_cursor: page.next_cursor,
      });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/jobs/:id',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Get a job',
        description:
          'Strong ETag from the record version: If-None-Match answers 304 without reading the record.',
        params: IdParams,
        headers: ConditionalHeaders,
        response: { 200: JobViewSchema, 304: NotModified, ...errorResponses(401, 404, 429) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const missing = () => new AppError('NOT_FOUND', `job ${id} not found`, { statusCode: 404 });
      if (!isJobId(id)) throw missing();
      // A poller that has the current version gets a 304 from three fields, without the record.
      const [tenant, batchId, version, notes, updatedAt] = await app.recast.redis.hmget(
        app.recast.keys.job(id),
        'tenant',
        'batch_id',
        'version',
        'notes',
        'updated_at',
      );
      const head = tenant ? { tenant, ...(batchId ? { batch_id: batchId } : {}) } : undefined;
      if (head && !(await visible(request, head))) throw missing();
      if (version && updatedAt && notModified(request, jobEtag(id, version, notes, updatedAt))) {
        return reply
          .header('etag', jobEtag(id, version, notes, updatedAt))
          .header('cache-control', 'private, no-cache')
          .code(304)
          .send();
      }
      // Not in Redis: archived (PostgreSQL), the same view and the same ETag as when it was live.
      const job = tenant ? await app.recast.store.get(id) : await app.recast.records.job(id);
      if (!job || (!tenant && !(await visible(request, job)))) throw missing();
      return sendCacheable(request, reply, jobView(job), jobEtag(id, job.version, job.notes, job.updated_at));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/jobs/:id/timeline',
    {
      schema: {
        tags: ['jobs'],
        summary: "A job's timeline: its states, and its provider task's events and logs",
        description:
          "Every state the job entered, with when; and the current attempt's task as the provider reports it (status moves and logs, read with `GET /tasks/{id}` and cached a few seconds per API process). A provider that cannot be read gives `provider.error`, not a failed request.",
        params: IdParams,
        response: { 200: JobTimelineSchema, ...errorResponses(401, 404, 429) },
      },
    },
    async (request) => {
      const { id } = request.params;
      const job = isJobId(id) ? await app.recast.records.job(id) : undefined;
      if (!job || !(await visible(request, job))) {
        throw new AppError('NOT_FOUND', `job ${id} not found`, { statusCode: 404 });
      }
      const { trails } = app.recast;
      const trail = !job.task_id
        ? undefined
        : trails
          ? await trails.read(job.task_id)
          : {
              task_id: job.task_id,
              status: null,
              events: [],
              logs: [],
              error: 'this API process has no INFERENCE_API_KEY: the provider task is not read',
              read_at: new Date().toISOString(),
            };
      return jobTimelineView(job, trail);
    },
  );

  // Recast's kept copy of a job's output (OUTPUT_STORE), with single-range support for players.
  app.get<{ Params: { id: string } }>(
    '/v1/jobs/:id/output',
    {
      schema: {
        tags: ['jobs'],
        summary: "Download Recast's kept copy of a job's output video",
        description:
          'Only with OUTPUT_STORE on. Single byte ranges (206, 416), If-Range; the ETag is the content hash.',
        params: IdParams,
        produces: ['video/mp4'],
        response: {
          200: z.string().describe('the MP4 bytes'),
          206: z.string().describe('a byte range of the MP4'),
          ...errorResponses(401, 404, 416, 429),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const job = isJobId(id) ? await app.recast.records.job(id) : undefined;
      if (!job || !(await visible(request, job))) {
        throw new AppError('NOT_FOUND', `job ${id} not found`, { statusCode: 404 });
      }
      const store = app.recast.outputs;
      const key = outputKey(job.id);
      const found =
        store && job.state === 'completed' && job.output_retention === 'stored'
          ? await store.stat(key)
          : undefined;
      if (!store || !found) {
        const why = !store
          ? 'output retention is not enabled on this deployment'
          : job.state !== 'completed'
            ? `the job is ${job.state}`
            : `the output is not kept (${job.output_retention ?? 'not asked for'})`;
        throw new AppError('OUTPUT_NOT_RETAINED', `job ${job.id} has no kept output: ${why}`, {
          statusCode: 404,
        });
      }
      const etag = job.output_sha256 ? `"${job.output_sha256}"` : undefined;
      void reply
        .header('accept-ranges', 'bytes')
        .header('content-type', 'video/mp4')
        .header('content-disposition', `attachment; filename="${job.id}.mp4"`)
        .header('cache-control', 'private, max-age=3600');
      if (etag) void reply.header('etag', etag);
      const ifRange = request.headers['if-range'];
      // A client resuming against a different file must get the whole new one, not a piece of it.
      const range =
        ifRange && ifRange !== etag ? undefined : parseByteRange(request.headers.range, found.size);
      if (range === 'unsatisfiable') {
        return reply
          .status(416)
          .header('content-range', `bytes */${found.size}`)
          .type('application/json')
          .send({
            error: {
              code: 'RANGE_NOT_SATISFIABLE',
              message: `the range ${request.headers.range} is outside the ${found.size}-byte file`,
            },
          });
      }
      if (!range) return reply.header('content-length', found.size).send(await store.read(key));
      return reply
        .status(206)
        .header('content-range', `bytes ${range.start}-${range.end}/${found.size}`)
        .header('content-length', range.end - range.start + 1)
        .send(await store.read(key, range));
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/jobs/:id/cancel',
    {
      config: { access: 'write' },
      schema: {
        tags: ['jobs'],
        summary: 'Cancel a job',
        description:
          'Not yet at the provider: cancelled at once (200). At the provider: cancelling (202), settled when it ends. A finished job is 409.',
        params: IdParams,
        response: { 200: JobViewSchema, 202: JobViewSchema, ...errorResponses(401, 403, 404, 409, 429, 503) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const job = isJobId(id) ? await app.recast.records.job(id) : undefined;
      if (!job || !(await visible(request, job))) {
        throw new AppError('NOT_FOUND', `job ${id} not found`, { statusCode: 404 });
      }
      if (!(await app.recast.store.get(id))) {
        // Archived: it finished long enough ago to have left Redis.
        throw new AppError('JOB_FINISHED', `job ${id} is already ${job.state}`, {
          statusCode: 409,
          details: { state: job.state },
        });
      }
      const { job: now, changed } = await app.recast.engine.cancel(job.tenant, id);
      request.log.info({ jobId: id, tenant: now.tenant, state: now.state, changed }, 'cancel requested');
      // 200 when the job is cancelled already, 202 while the provider is being asked.
      return reply.status(now.state === 'cancelled' ? 200 : 202).send(jobView(now));
    },
  );
}

function uploadsOff(field: string): AppError {
  return new AppError('FILE_UPLOADS_DISABLED', `${field}: file uploads are not enabled on this deployment`, {
    statusCode: 400,
    issues: [{ path: field, message: 'file uploads are not enabled (no INFERENCE_API_KEY on the API)' }],
  });
}
