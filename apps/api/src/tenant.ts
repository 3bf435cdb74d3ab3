import type { FastifyRequest } from 'fastify';

/** The tenant a request acts for: its key's, or for an admin the one it names in X-Tenant. */
export function tenantOf(request: FastifyRequest): string {
  return request.principal.tenant;
}

/** Whether the caller may see a resource of `tenant`: its own, or any for an admin. */
export function canSee(request: FastifyRequest, tenant: string): boolean {
  return request.principal.allTenants || request.principal.tenant === tenant;
}

/** Whether the caller reads across tenants (an admin key): listings may then span or pick tenants. */
export function isAdmin(request: FastifyRequest): boolean {
  return request.principal.allTenants;
}
