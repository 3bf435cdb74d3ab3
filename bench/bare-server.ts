/**
 * The ceiling for any HTTP submit path on this machine: a bare Fastify route that parses the
 * JSON body and answers 202, no Redis. Run as its own process by the submit benchmark.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post('/v1/jobs', async (request, reply) =>
  reply.status(202).send({ accepted: true, body: request.body }),
);
app.get('/readyz', async () => ({ status: 'ready' }));
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
