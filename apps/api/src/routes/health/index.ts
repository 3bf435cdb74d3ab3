import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

export default async function healthRoutes(app: FastifyInstance) {
  /** Liveness: the process answers. */
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness',
        security: [],
        response: { 200: z.strictObject({ status: z.literal('ok') }) },
      },
      config: { access: 'public' },
    },
    async () => ({ status: 'ok' }),
  );

  /** Readiness: Redis answers within a second; a load balancer stops routing here otherwise. */
  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: Redis answers',
        security: [],
        response: {
          200: z.strictObject({ status: z.literal('ready'), redis: z.literal('ok') }),
          503: z.strictObject({ status: z.literal('unavailable'), redis: z.string() }),
        },
      },
      config: { access: 'public' },
    },
    async (_request, reply) => {
      try {
        await Promise.race([
          app.recast.redis.ping(),
          new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 1_000)),
        ]);
        return { status: 'ready', redis: 'ok' };
      } catch (err) {
        return reply.status(503).send({ status: 'unavailable', redis: (err as Error).message });
      }
    },
  );
}
