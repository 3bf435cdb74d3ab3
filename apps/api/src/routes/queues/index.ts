import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';

export const QUEUES_UI_PATH = '/admin/queues';

/**
 * Bull Board for admins at /admin/queues: the dispatch, settle and notify queues as BullMQ sees
 * them (waiting, active, delayed, failed, with retries). Every route the board adds needs an admin
 * key; a browser gets a Basic prompt (any user name, the API key as password), since a page
 * navigation cannot carry a Bearer header. Read-only: a BullMQ job removed, cleaned or retried behind
 * Recast's state scripts would leave its Recast job stuck (or submitted twice); changes go through
 * the API (cancel, retry), which keeps the ledger and the state machine in step.
 */
export default async function queueBoardRoutes(app: FastifyInstance) {
  const adapter = new FastifyAdapter();
  adapter.setBasePath(QUEUES_UI_PATH);
  createBullBoard({
    queues: [app.recast.queues.dispatch, app.recast.queues.settle, app.recast.queues.notify].map(
      (queue) => new BullMQAdapter(queue, { readOnlyMode: true }),
    ),
    serverAdapter: adapter,
  });
  await app.register(async (board) => {
    board.addHook('onRoute', (route) => {
      route.config = { ...(route.config as object), access: 'admin', basicAuth: true };
    });
    // The board's page sets its base path in an inline script: allow inline scripts here only.
    board.addHook('onSend', async (_request, reply) => {
      void reply.header(
        'content-security-policy',
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
      );
    });
    await board.register(adapter.registerPlugin(), { prefix: QUEUES_UI_PATH });
  });
}
