/**
 * Baselines as their own process: a bare Fastify route that parses the JSON body and answers 202
 * with no Redis (the ceiling of any submit path), and, when REDIS_URL is set, a bare route that
 * reads one Redis hash and answers it as JSON (the ceiling of any status poll).
 */

import { createLogger, createRedis } from '@recast/core/infra';
import Fastify from 'fastify';

const app = Fastify({ logger: false });
const redis = process.env.REDIS_URL
  ? createRedis({
      target: process.env.REDIS_URL,
      // Commands wait for the first connect instead of failing (the route is hit at once).
      role: 'worker',
      logger: createLogger({ level: 'warn', name: 'bench-bare' }),
      name: 'bench-bare',
    })
  : undefined;
app.post('/v1/jobs', async (request, reply) =>
  reply.status(202).send({ accepted: true, body: request.body }),
);
app.get<{ Params: { key: string } }>('/hash/:key', async (request) => redis?.hgetall(request.params.key));
app.get('/readyz', async () => ({ status: 'ready' }));
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.on(
  'SIGTERM',
  () =>
    void app.close().then(async () => {
      await redis?.quit();
      process.exit(0);
    }),
);
