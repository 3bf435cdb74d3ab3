import { errorResponses, TenantViewSchema } from '@recast/core/contract';
import { AppError, parseOrThrow } from '@recast/core/errors';
import { tenantIdProblem } from '@recast/core/model';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { canSee } from '../../tenant.js';

const PutTenantSchema = z.strictObject({
  /** Share of dispatch relative to other tenants with queued work (default 1). */
  weight: z
    .number({ message: 'must be a number' })
    .positive('must be greater than 0')
    .max(1000, 'must be at most 1000'),
});

const TenantParams = z.strictObject({ tenant: z.string() });

function tenantParam(tenant: string): string {
  const problem = tenantIdProblem(tenant);
  if (problem)
    throw new AppError('VALIDATION_FAILED', `invalid tenant "${tenant}": ${problem}`, {
      statusCode: 400,
      issues: [{ path: 'tenant', message: problem }],
    });
  return tenant;
}

/** Per-tenant fair-share settings: the weight, and how many jobs wait in the tenant's line. */
export default async function tenantRoutes(app: FastifyInstance) {
  const view = async (tenant: string) => {
    const [weights, depths] = await Promise.all([app.recast.fair.weights(), app.recast.fair.depths()]);
    return {
      object: 'tenant',
      id: tenant,
      weight: weights[tenant] ?? 1,
      waiting_dispatch: depths[tenant] ?? 0,
    };
  };

  app.get<{ Params: { tenant: string } }>(
    '/v1/tenants/:tenant',
    {
      schema: {
        tags: ['money'],
        summary: "A tenant's fair-share weight and waiting jobs",
        params: TenantParams,
        response: { 200: TenantViewSchema, ...errorResponses(400, 401, 404, 429) },
      },
    },
    async (request) => {
      const tenant = tenantParam(request.params.tenant);
      if (!canSee(request, tenant))
        throw new AppError('NOT_FOUND', `tenant ${tenant} not found`, { statusCode: 404 });
      return view(tenant);
    },
  );

  app.put<{ Params: { tenant: string } }>(
    '/v1/tenants/:tenant',
    {
      schema: {
        tags: ['money'],
        summary: "Set a tenant's fair-share weight",
        params: TenantParams,
        body: PutTenantSchema,
        response: { 200: TenantViewSchema, ...errorResponses(400, 401, 403, 429) },
      },
      config: { access: 'admin' },
    },
    async (request) => {
      const tenant = tenantParam(request.params.tenant);
      const { weight } = parseOrThrow(PutTenantSchema, request.body);
      await app.recast.fair.setWeight(tenant, weight);
      request.log.info({ tenant, weight }, 'tenant weight set');
      return view(tenant);
    },
  );
}
