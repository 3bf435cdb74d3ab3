import {
  AppError,
  cancelJob,
  errorResponses,
  isJobId,
  JOB_STATES,
  JobListSchema,
  type JobRecord,
  JobRequestSchema,
  JobViewSchema,
  jobView,
  listJobs,
  notifyFinished,
  parseOrThrow,
  submitJob,
  TENANT_PATTERN,
} from '@recast/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { notModified, sendCacheable } from '../../etag.js';
import { canSee, isAdmin, tenantOf } from '../../tenant.js';

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
  tenant: z.string().regex(TENANT_PATTERN, 'must be a tenant id').optional(),
  order: z.enum(['desc', 'asc'], { message: 'must be "desc" (newest first) or "asc"' }).default('desc'),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
});

const IdParams = z.strictObject({ id: z.string().describe('job id (job_…)') });
const NotModified = z.null().describe('not modified: the If-None-Match tag is current');

/** The version tag of a job: its record's version moves with every change (transition-2.lua). */
const jobEtag = (id: string, version: number | string) => `"${id}.v${version}"`;

export default async function jobRoutes(app: FastifyInstance) {
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
      config: { access: 'write' },
      schema: {
        tags: ['jobs'],
        summary: 'Submit a job',
        description:
          "The app's input plus Recast's fields; unknown fields are refused. An Idempotency-Key header returns the same job for the same body (200) and refuses a different body (422).",
        body: JobRequestSchema,
        headers: z.object({ 'idempotency-key': z.string().optional() }),
        response: {
          202: JobViewSchema,
          200: JobViewSchema,
          ...errorResponses(400, 401, 403, 409, 422, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const idempotencyKey = request.headers['idempotency-key'];
      const { job, created } = await submitJob(app.recast, {
        tenant: tenantOf(request),
        body: request.body,
        ...(typeof idempotencyKey === 'string' ? { idempotencyKey } : {}),
      });
      request.log.info(
        { jobId: job.id, tenant: job.tenant, created },
        created ? 'job accepted' : 'idempotent replay',
      );
      void reply.header('location', `/v1/jobs/${job.id}`);
      if (!created) void reply.header('idempotent-replayed', 'true');
      return reply.status(created ? 202 : 200).send(jobView(job));
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
        const owner = await app.recast.redis.hmget(
          app.recast.keys.batch(query.batch),
          'tenant',
          'stored_status',
        );
        if (!owner[0] || owner[1] === 'validating' || !canSee(request, owner[0])) {
          throw new AppError('NOT_FOUND', `batch ${query.batch} not found`, { statusCode: 404 });
        }
      }
      const page = await listJobs(app.recast.redis, app.recast.keys, {
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
        response: { 200: JobViewSchema, 304: NotModified, ...errorResponses(401, 404, 429) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const missing = () => new AppError('NOT_FOUND', `job ${id} not found`, { statusCode: 404 });
      if (!isJobId(id)) throw missing();
      // A poller that has the current version gets a 304 from three fields, without the record.
      const [tenant, batchId, version] = await app.recast.redis.hmget(
        app.recast.keys.job(id),
        'tenant',
        'batch_id',
        'version',
      );
      const head = tenant ? { tenant, ...(batchId ? { batch_id: batchId } : {}) } : undefined;
      if (!(await visible(request, head))) throw missing();
      if (version && notModified(request, jobEtag(id, version))) {
        return reply
          .header('etag', jobEtag(id, version))
          .header('cache-control', 'private, no-cache')
          .code(304)
          .send();
      }
      const job = await app.recast.store.get(id);
      if (!job) throw missing();
      return sendCacheable(request, reply, jobView(job), jobEtag(id, job.version));
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
        response: { 200: JobViewSchema, 202: JobViewSchema, ...errorResponses(401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const job = isJobId(id) ? await app.recast.store.get(id) : undefined;
      if (!job || !(await visible(request, job))) {
        throw new AppError('NOT_FOUND', `job ${id} not found`, { statusCode: 404 });
      }
      const { job: now, changed } = await cancelJob(
        {
          ...app.recast,
          onMoneyFreed: () => app.recast.redis.set(app.recast.keys.unparkWake(), '1').then(() => undefined),
          onTerminal: (cancelled) => notifyFinished(app.recast, cancelled),
        },
        job.tenant,
        id,
      );
      request.log.info({ jobId: id, tenant: now.tenant, state: now.state, changed }, 'cancel requested');
      // 200 when the job is cancelled already, 202 while the provider is being asked.
      return reply.status(now.state === 'cancelled' ? 200 : 202).send(jobView(now));
    },
  );
}
