import type { FastifyRequest } from 'fastify';

/** Until API keys exist, the tenant is the `X-Tenant` header (default `default`). */
export function tenantOf(request: FastifyRequest): string {
  const header = request.headers['x-tenant'];
  return typeof header === 'string' && header.length > 0 ? header : 'default';
}
