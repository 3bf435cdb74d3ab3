import { CostReportSchema, errorResponses } from '@recast/core/contract';
import { parseOrThrow } from '@recast/core/errors';
import { COST_GROUPS, costReport, utcDay } from '@recast/core/money';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { isAdmin, tenantOf } from '../../tenant.js';

const DAY = /^\d{4}-\d{2}-\d{2}$/;

const CostQuerySchema = z.strictObject({
  from: z.string().regex(DAY, 'must be a UTC day, YYYY-MM-DD').optional(),
  to: z.string().regex(DAY, 'must be a UTC day, YYYY-MM-DD').optional(),
  group_by: z
    .string()
    .default('resolution')
    .transform((v) =>
      v
        .split(',')
        .map((g) => g.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(COST_GROUPS, { message: `each must be one of ${COST_GROUPS.join(', ')}` }))),
  tenant: z.string().min(1).optional(),
  batch: z.string().min(1).optional(),
});

/**
 * Actual spend: seconds, job count, micro-dollars and dollars between two UTC days (default: this
 * month so far), grouped by any of day, resolution, tenant and batch. The per-second cost by
 * resolution is the headline, so that is the default grouping.
 */
export default async function costRoutes(app: FastifyInstance) {
  app.get(
    '/v1/costs',
    {
      schema: {
        tags: ['money'],
        summary: 'Actual spend: seconds, jobs and micro-dollars, grouped',
        querystring: CostQuerySchema,
        response: { 200: CostReportSchema, ...errorResponses(400, 401, 429) },
      },
    },
    async (request) => {
      const query = parseOrThrow(CostQuerySchema, request.query, 'query');
      const today = utcDay(new Date());
      // A tenant's report covers its own spend only; an admin may look at anyone's, or everyone's.
      const tenant = isAdmin(request) ? query.tenant : tenantOf(request);
      return {
        object: 'cost_report',
        ...(await costReport(app.recast.redis, app.recast.keys, {
          from: query.from ?? `${today.slice(0, 7)}-01`,
          to: query.to ?? today,
          groupBy: query.group_by,
          ...(tenant ? { tenant } : {}),
          ...(query.batch ? { batch: query.batch } : {}),
        })),
        prices: {
          version: app.recast.prices.version,
          micro_usd_per_second: app.recast.prices.micro_usd_per_second,
        },
      };
    },
  );
}
