import { errorResponses, PrincipalViewSchema } from '@recast/core/contract';
import type { FastifyInstance } from 'fastify';

/**
 * `GET /v1/me`: the calling key's role and tenant, and what it may do. A client (the dashboard)
 * offers only the actions the key may take; the routes check the role themselves regardless.
 */
export default async function meRoutes(app: FastifyInstance) {
  app.get(
    '/v1/me',
    {
      schema: {
        tags: ['keys'],
        summary: 'The calling key: its role, its tenant and what it may do',
        response: { 200: PrincipalViewSchema, ...errorResponses(401, 429) },
      },
    },
    async (request) => {
      const { keyId, role, tenant, allTenants } = request.principal;
      return {
        object: 'principal' as const,
        key_id: keyId,
        role,
        tenant,
        all_tenants: allTenants,
        can_write: role === 'admin' || role === 'submitter',
        can_admin: role === 'admin',
      };
    },
  );
}
