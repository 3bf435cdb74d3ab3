import multipart from '@fastify/multipart';
import {
  AppError,
  cancelJob,
  firstDataUriField,
  isJobId,
  type JobRecord,
  jobView,
  type Logger,
  notifyFinished,
  outputKey,
  type PendingFiles,
  parseByteRange,
  removeAll,
  spoolDataUris,
  submitJob,
} from '@recast/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { tenantOf } from '../../tenant.js';
import { readJobForm } from './job-form.js';

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
  // An answer sent before the form was read to its end (a wrong type, too large) closes the
  // connection rather than read the rest of a file nobody wants (see batches/index.ts).
  app.addHook('onSend', async (request, reply) => {
    if (!request.raw.complete) void reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request) => {
    if (!request.raw.complete) request.raw.socket?.destroy();
  });

  async function visibleJob(request: FastifyRequest<{ Params: { id: string } }>): Promise<JobRecord> {
    const { id } = request.params;
    const job = isJobId(id) ? await app.recast.store.get(id) : undefined;
    // Another tenant's job is indistinguishable from a missing one.
    // A job of a batch that is still being uploaded does not exist yet for anyone.
    const staged = job?.batch_id
      ? (await app.recast.redis.hget(app.recast.keys.batch(job.batch_id), 'stored_status')) === 'validating'
      : false;
    if (!job || job.tenant !== tenantOf(request) || staged) {
      throw new AppError('NOT_FOUND', `job ${id} not found`, { statusCode: 404 });
    }
    return job;
  }

  app.post('/v1/jobs', { bodyLimit: options.jsonBodyLimit }, async (request, reply) => {
    const idempotencyKey = request.headers['idempotency-key'];
    const tenant = tenantOf(request);
    const log = request.log.child({ tenant }) as unknown as Logger;
    let body: unknown = request.body;
    let pending: PendingFiles = new Map();
    try {
      if (request.isMultipart()) {
        if (!files) throw uploadsOff('video');
        ({ body, files: pending } = await readJobForm(request, files.limits, log));
      } else if (files) {
        ({ body, files: pending } = await spoolDataUris(body, files.limits, log));
      } else {
        const field = firstDataUriField(body);
        if (field) throw uploadsOff(field);
      }
      const { job, created } = await submitJob(app.recast, {
        tenant,
        body,
        files: pending,
        ...(typeof idempotencyKey === 'string' ? { idempotencyKey } : {}),
      });
      log.info(
        { jobId: job.id, created, files: pending.size },
        created ? 'job accepted' : 'idempotent replay',
      );
      void reply.header('location', `/v1/jobs/${job.id}`);
      if (!created) void reply.header('idempotent-replayed', 'true');
      return reply.status(created ? 202 : 200).send(jobView(job));
    } finally {
      await removeAll(pending.values());
    }
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (request) => jobView(await visibleJob(request)));

  // Recast's kept copy of a job's output (OUTPUT_STORE), with single-range support for players.
  app.get<{ Params: { id: string } }>('/v1/jobs/:id/output', async (request, reply) => {
    const job = await visibleJob(request);
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
    const range = ifRange && ifRange !== etag ? undefined : parseByteRange(request.headers.range, found.size);
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
  });

  app.post<{ Params: { id: string } }>('/v1/jobs/:id/cancel', async (request, reply) => {
    const { id } = request.params;
    if (!isJobId(id)) throw new AppError('NOT_FOUND', `job ${id} not found`, { statusCode: 404 });
    const { job, changed } = await cancelJob(
      {
        ...app.recast,
        onMoneyFreed: () => app.recast.redis.set(app.recast.keys.unparkWake(), '1').then(() => undefined),
        onTerminal: (cancelled) => notifyFinished(app.recast, cancelled),
      },
      tenantOf(request),
      id,
    );
    request.log.info({ jobId: id, tenant: job.tenant, state: job.state, changed }, 'cancel requested');
    // 200 when the job is cancelled already, 202 while the provider is being asked.
    return reply.status(job.state === 'cancelled' ? 200 : 202).send(jobView(job));
  });
}

function uploadsOff(field: string): AppError {
  return new AppError('FILE_UPLOADS_DISABLED', `${field}: file uploads are not enabled on this deployment`, {
    statusCode: 400,
    issues: [{ path: field, message: 'file uploads are not enabled (no INFERENCE_API_KEY on the API)' }],
  });
}
