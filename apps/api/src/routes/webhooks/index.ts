import { errorResponses } from '@recast/core/contract';
import { AppError } from '@recast/core/errors';
import { type RecastMetrics, webhookOutcome } from '@recast/core/metrics';
import { isJobId } from '@recast/core/model';
import { parseWebhookPayload, verifyWebhookToken } from '@recast/core/provider';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';

export interface WebhookRoutesOptions {
  bodyLimit: number;
  /** Counts every webhook by outcome, read from the status answered (so a 413 counts too). */
  webhooks?: RecastMetrics['webhooks'];
}

/**
 * The provider's terminal-state webhook for one job. The provider signs nothing, so the URL
 * carries a per-job HMAC token. A webhook is only a hint: it is put on the settle queue (in Redis
 * before the 2xx, so an accepted webhook is never lost) and the settle step confirms the task's
 * state with GET /tasks/:id before any money moves.
 */
export default async function webhookRoutes(app: FastifyInstance, options: WebhookRoutesOptions) {
  app.post<{ Params: { jobId: string }; Querystring: { attempt?: string; token?: string } }>(
    '/webhooks/inference/:jobId',
    {
      schema: {
        tags: ['provider'],
        summary: "The provider's terminal webhook for one job",
        description:
          'Authenticated by the per-job HMAC token the worker put in the URL (not an API key). Queued in Redis before the 202; settled after GET /tasks/:id confirms it.',
        security: [],
        params: z.strictObject({ jobId: z.string() }),
        querystring: z.object({ attempt: z.string().optional(), token: z.string().optional() }),
        response: {
          202: z.strictObject({ accepted: z.literal(true) }),
          ...errorResponses(400, 401, 404, 413, 503),
        },
      },
      bodyLimit: options.bodyLimit,
      config: { access: 'public' },
      ...(options.webhooks ? { onResponse: countWebhook(options.webhooks) } : {}),
    },
    async (request, reply) => {
      const { jobId } = request.params;
      const token = typeof request.query.token === 'string' ? request.query.token : undefined;
      if (!isJobId(jobId) || !verifyWebhookToken(app.recast.webhookSecret, jobId, token)) {
        throw new AppError('UNAUTHORIZED', 'invalid webhook token', { statusCode: 401 });
      }
      const payload = parseWebhookPayload(request.body);
      const attempt = Number(request.query.attempt);
      await app.recast.engine.acceptWebhook({
        jobId,
        taskId: payload.taskId,
        ...(Number.isSafeInteger(attempt) && attempt > 0 ? { attempt } : {}),
        statusHint: payload.statusText ?? payload.status,
        claimed: payload.status,
      });
      request.log.info({ jobId, taskId: payload.taskId, status: payload.status }, 'webhook accepted');
      return reply.status(202).send({ accepted: true });
    },
  );
}

function countWebhook(counter: NonNullable<WebhookRoutesOptions['webhooks']>) {
  return async (_request: FastifyRequest, reply: FastifyReply) => {
    counter.inc({ outcome: webhookOutcome(reply.statusCode) });
  };
}
