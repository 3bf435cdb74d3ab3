import { AppError, cancelJob, isJobId, jobView, notifyFinished, submitJob } from '@recast/core';
import type { FastifyInstance } from 'fastify';
import { tenantOf } from '../../tenant.js';

export default async function jobRoutes(app: FastifyInstance) {
  app.post('/v1/jobs', async (request, reply) => {
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
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (request) => {
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
    return jobView(job);
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
