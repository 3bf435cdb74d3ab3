import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { errorResponses } from '@recast/core/contract';
import { AppError, parseOrThrow } from '@recast/core/errors';
import { STREAM_ID_PATTERN } from '@recast/core/events';
import { TenantIdSchema } from '@recast/core/model';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { canSee, isAdmin, tenantOf } from '../../tenant.js';

export interface EventRoutesOptions {
  /** How often a stream looks for new events. */
  pollMs: number;
  /** A comment line this often keeps proxies from closing an idle stream. */
  heartbeatMs: number;
}

const EventsQuerySchema = z.strictObject({
  batch: z
    .string()
    .regex(/^bat_[0-9A-Z]{26}$/, 'must be a batch id')
    .optional(),
  /** Admins: another tenant's stream (a key's own tenant otherwise). */
  tenant: TenantIdSchema.optional(),
  /** Same as the Last-Event-ID header, for clients that cannot set headers. */
  last_event_id: z.string().regex(STREAM_ID_PATTERN, 'must be an event id').optional(),
});

const PAGE = 500;

/**
 * `GET /v1/events`: Server-Sent Events of the caller's tenant, job and batch state changes as they
 * are written to the tenant's Redis stream (in the same scripts that move the state, so nothing is
 * missed and the order is the order of the moves). `Last-Event-ID` resumes after that event; an
 * `event: reset` says the stream no longer reaches back that far (re-read the state, then go on).
 */
export default async function eventRoutes(app: FastifyInstance, options: EventRoutesOptions) {
  const open = new Set<ServerResponse>();
  // Streams never end on their own: end them when the server closes, or it would wait for them.
  app.addHook('preClose', async () => {
    for (const raw of open) raw.end();
  });

  app.get(
    '/v1/events',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Server-Sent Events: job and batch state changes of the tenant',
        description:
          'Last-Event-ID (header) or last_event_id resumes after that event; `event: reset` when the stream no longer reaches back that far.',
        querystring: EventsQuerySchema,
        produces: ['text/event-stream'],
        response: {
          200: z.string().describe('text/event-stream'),
          ...errorResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const query = parseOrThrow(EventsQuerySchema, request.query, 'query');
      if (query.tenant !== undefined && !isAdmin(request)) {
        throw new AppError('FORBIDDEN', 'tenant: only an admin key reads other tenants', {
          statusCode: 403,
          issues: [{ path: 'tenant', message: 'this key reads its own tenant only' }],
        });
      }
      const tenant = query.tenant ?? tenantOf(request);
      const header = request.headers['last-event-id'];
      const resume = typeof header === 'string' && header !== '' ? header : query.last_event_id;
      if (resume !== undefined && !STREAM_ID_PATTERN.test(resume)) {
        throw new AppError('VALIDATION_FAILED', 'invalid Last-Event-ID', {
          statusCode: 400,
          issues: [{ path: 'Last-Event-ID', message: 'must be the id of an event this stream sent' }],
        });
      }
      if (query.batch !== undefined) {
        const owner = await app.recast.redis.hmget(
          app.recast.keys.batch(query.batch),
          'tenant',
          'stored_status',
        );
        if (!owner[0] || owner[1] === 'validating' || !canSee(request, owner[0]) || owner[0] !== tenant) {
          throw new AppError('NOT_FOUND', `batch ${query.batch} not found`, { statusCode: 404 });
        }
      }
      let cursor = resume ?? (await app.recast.events.latestId(tenant));

      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        // What the hooks set so far (security headers among them): a hijacked reply sends only this.
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      open.add(raw);
      let closed = false;
      let wake: (() => void) | undefined;
      const stop = () => {
        closed = true;
        open.delete(raw);
        wake?.();
      };
      raw.on('close', stop);
      const write = async (text: string) => {
        if (!raw.write(text)) await Promise.race([once(raw, 'drain'), once(raw, 'close')]);
      };
      const log = request.log.child({ tenant, batchId: query.batch });
      log.info({ resume: resume ?? null }, 'event stream opened');
      let lastWrite = Date.now();
      try {
        await write(`retry: 2000\n: stream of ${tenant}\n\n`);
        while (!closed) {
          const { events, gap } = await app.recast.events.after(tenant, cursor, PAGE);
          if (gap) await write(`event: reset\ndata: {"reason":"events before this point were trimmed"}\n\n`);
          for (const event of events) {
            cursor = event.id;
            if (query.batch !== undefined && event.data.batch !== query.batch) continue;
            await write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`);
            lastWrite = Date.now();
          }
          if (events.length === PAGE) continue;
          if (Date.now() - lastWrite >= options.heartbeatMs) {
            await write(': ping\n\n');
            lastWrite = Date.now();
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, options.pollMs).unref();
          });
        }
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'event stream ended by an error');
      } finally {
        stop();
        raw.end();
        log.info('event stream closed');
      }
    },
  );
}
