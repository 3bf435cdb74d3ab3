import { errorResponses, StatsSchema } from '@recast/core/contract';
import { AppError, parseOrThrow } from '@recast/core/errors';
import { TenantIdSchema } from '@recast/core/model';
import { statsOf } from '@recast/core/stats';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { bodyEtag, notModified } from '../../etag.js';
import { isAdmin, tenantOf } from '../../tenant.js';

const StatsQuerySchema = z.strictObject({
  /** Admins: one tenant's figures, or `*` for the whole deployment (the default for an admin). */
  tenant: z.union([z.literal('*'), TenantIdSchema]).optional(),
});

/** What a dashboard polls: jobs by state, provider pressure, budgets, today's spend by resolution. */
export interface StatsRoutesOptions {
  /** How long one build of the stats serves every poller of a tenant (STATS_CACHE_MS). */
  cacheMs: number;
}

export default async function statsRoutes(app: FastifyInstance, options: StatsRoutesOptions) {
  const cache = new Map<string, { body: string; etag: string; expires: number }>();
  app.get(
    '/v1/stats',
    {
      schema: {
        tags: ['jobs'],
        summary: 'What a dashboard polls: jobs by state, provider pressure, budgets, spend today',
        querystring: StatsQuerySchema,
        response: {
          200: StatsSchema,
          304: z.null().describe('not modified'),
          ...errorResponses(400, 401, 403, 429),
        },
      },
    },
    async (request, reply) => {
      const query = parseOrThrow(StatsQuerySchema, request.query, 'query');
      if (query.tenant !== undefined && !isAdmin(request)) {
        throw new AppError('FORBIDDEN', 'tenant: only an admin key reads other tenants', {
          statusCode: 403,
          issues: [{ path: 'tenant', message: 'this key reads its own tenant only' }],
        });
      }
      const tenant = isAdmin(request)
        ? query.tenant === undefined || query.tenant === '*'
          ? request.headers['x-tenant']
            ? tenantOf(request)
            : undefined
          : query.tenant
        : tenantOf(request);
      // Many dashboards poll the same figures: one build per tenant per cacheMs serves them all
      // (and their 304s), so a thousand pollers cost Redis what one does.
      const key = tenant ?? '*';
      let hit = cache.get(key);
      if (!hit || hit.expires <= Date.now()) {
        const body = JSON.stringify(await statsOf(app.recast, tenant));
        hit = { body, etag: bodyEtag(body), expires: Date.now() + options.cacheMs };
        cache.set(key, hit);
      }
      void reply.header('etag', hit.etag).header('cache-control', 'private, no-cache');
      if (notModified(request, hit.etag)) return reply.code(304).send();
      return reply.type('application/json; charset=utf-8').send(hit.body);
    },
  );
}
