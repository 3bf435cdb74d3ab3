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

  /**
   * Readiness: Redis answers within a second (the live path needs nothing else), so a load
   * balancer stops routing here otherwise. The history database is reported beside it: while it
   * is down, submits, webhooks and settles go on and the archive backlog grows, so it does not
   * make the process unready.
   */
  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: Redis answers (the history database is reported, not required)',
        security: [],
        response: {
          200: z.strictObject({
            status: z.literal('ready'),
            redis: z.literal('ok'),
            database: DatabaseState,
          }),
          503: z.strictObject({
            status: z.literal('unavailable'),
            redis: z.string(),
            database: DatabaseState,
          }),
        },
      },
      config: { access: 'public' },
    },
    async (_request, reply) => {
      const [redis, database] = await Promise.all([
        withinSecond(app.recast.redis.ping()).then(
          () => 'ok',
          (err: Error) => err.message,
        ),
        databaseState(),
      ]);
      if (redis === 'ok') return { status: 'ready', redis: 'ok', database };
      return reply.status(503).send({ status: 'unavailable', redis, database });
    },
  );

  async function databaseState(): Promise<string> {
    const { db, migrated } = app.recast;
    if (!db) return 'not configured';
    try {
      await withinSecond(db.query('SELECT 1'));
    } catch (err) {
      return (err as Error).message;
    }
    return migrated() ? 'ok' : 'migrating';
  }
}

const DatabaseState = z
  .string()
  .describe('"ok", "migrating" (the schema is being brought up to date), or why PostgreSQL does not answer');

function withinSecond<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), 1_000);
    }),
  ]).finally(() => clearTimeout(timer));
}
