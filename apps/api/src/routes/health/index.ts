import type { FastifyInstance } from 'fastify';

export default async function healthRoutes(app: FastifyInstance) {
  /** Liveness: the process answers. */
  app.get('/healthz', { config: { access: 'public' } }, async () => ({ status: 'ok' }));

  /** Readiness: Redis answers within a second; a load balancer stops routing here otherwise. */
  app.get('/readyz', { config: { access: 'public' } }, async (_request, reply) => {
    try {
      await Promise.race([
        app.recast.redis.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 1_000)),
      ]);
      return { status: 'ready', redis: 'ok' };
    } catch (err) {
      return reply.status(503).send({ status: 'unavailable', redis: (err as Error).message });
    }
  });
}
