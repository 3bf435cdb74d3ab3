import { ApiKeys, type Principal } from '@recast/core/auth';
import type { Role } from '@recast/core/contract';
import { AppError } from '@recast/core/errors';
import type { Logger } from '@recast/core/infra';
import { tenantIdProblem } from '@recast/core/model';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

/**
 * What a route needs: `public` (health, the provider's webhooks, static pages), `read` (any key,
 * its own tenant), `write` (submit, cancel, retry: admin or submitter), `admin` (money limits,
 * weights, keys, operations). A route that says nothing needs `read`: forgetting to say is closed.
 */
export type Access = 'public' | 'read' | 'write' | 'admin';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
    /** Pages opened in a browser (Bull Board): a 401 asks for Basic credentials, the key as password. */
    basicAuth?: boolean;
  }
  interface FastifyRequest {
    /** Who is asking; set for every route but the public ones. */
    principal: Principal;
  }
  interface FastifyInstance {
    apiKeys: ApiKeys;
  }
}

const ALLOWED: Record<Exclude<Access, 'public'>, readonly Role[]> = {
  read: ['admin', 'submitter', 'viewer'],
  write: ['admin', 'submitter'],
  admin: ['admin'],
};

export interface AuthPluginOptions {
  /**
   * AUTH_DISABLED (local development only; logged loudly): no keys; every request acts for the
   * tenant its X-Tenant names (default `default`) with every role, and sees that tenant only.
   */
  disabled: boolean;
  /** ADMIN_API_KEY: the bootstrap admin key, created at start if it does not exist. */
  bootstrapKey?: string | undefined;
  logger: Logger;
  /** API_KEY_CACHE_MS: how long a looked-up key is trusted without reading Redis again. */
  cacheMs: number;
}

/** The key of `Authorization: Bearer <key>`, or of `Basic` credentials (the key is the password). */
function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const bearer = /^Bearer\s+(\S+)$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
  if (!basic?.[1]) return undefined;
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  return decoded.slice(decoded.indexOf(':') + 1) || undefined;
}

/** The X-Tenant an admin names (validated), or undefined. */
function namedTenant(request: FastifyRequest): string | undefined {
  const header = request.headers['x-tenant'];
  if (header === undefined || header === '') return undefined;
  const problem = typeof header === 'string' ? tenantIdProblem(header) : 'must be given once';
  if (problem || typeof header !== 'string') {
    throw new AppError('VALIDATION_FAILED', `invalid X-Tenant: ${problem}`, {
      statusCode: 400,
      issues: [{ path: 'X-Tenant', message: problem ?? 'must be given once' }],
    });
  }
  return header;
}

/**
 * API keys (`Authorization: Bearer rk_…`), each bound to a tenant and a role. The key decides the
 * tenant; only an admin may act for another one with `X-Tenant` (and reads every tenant). A
 * missing or unknown key is 401, a role that may not do this is 403; a resource of another tenant
 * is answered as missing (404) by the routes, so its existence does not leak.
 */
export const authPlugin = fp(async (app: FastifyInstance, options: AuthPluginOptions) => {
  const keys = new ApiKeys(app.recast.redis, app.recast.keys, options.cacheMs);
  app.decorate('apiKeys', keys);
  app.decorateRequest('principal', undefined as unknown as Principal);
  if (options.disabled) {
    options.logger.warn(
      'AUTH_DISABLED: no API keys; X-Tenant names the tenant of every request. Never run a shared deployment like this',
    );
  }
  if (options.bootstrapKey) {
    const record = await keys
      .ensure(options.bootstrapKey, {
        name: 'bootstrap admin (ADMIN_API_KEY)',
        role: 'admin',
        tenant: 'default',
      })
      .catch((err: Error) => {
        // Redis may be down at boot: the API still starts (see recast plugin); retried next start.
        options.logger.error({ err: err.message }, 'could not register ADMIN_API_KEY');
        return null;
      });
    if (record === undefined) {
      options.logger.warn(
        'ADMIN_API_KEY was revoked and stays revoked; configure a new one or use another admin key',
      );
    }
  }

  app.addHook('onRequest', async (request, reply) => {
    const access = request.routeOptions.config.access ?? 'read';
    if (access === 'public') return;
    let principal: Principal;
    if (options.disabled) {
      principal = {
        keyId: 'anonymous',
        role: 'admin',
        tenant: namedTenant(request) ?? 'default',
        allTenants: false,
      };
    } else {
      const key = presentedKey(request);
      if (!key && request.routeOptions.config.basicAuth) {
        void reply.header('www-authenticate', 'Basic realm="Recast admin", charset="UTF-8"');
      }
      if (!key) {
        throw new AppError('UNAUTHORIZED', 'an API key is required: Authorization: Bearer rk_…', {
          statusCode: 401,
        });
      }
      const record = await keys.lookup(key);
      if (!record) throw new AppError('UNAUTHORIZED', 'unknown or revoked API key', { statusCode: 401 });
      const named = namedTenant(request);
      if (record.role !== 'admin' && named !== undefined && named !== record.tenant) {
        throw new AppError('FORBIDDEN', 'X-Tenant: this key acts only for its own tenant', {
          statusCode: 403,
          issues: [{ path: 'X-Tenant', message: `this key belongs to tenant ${record.tenant}` }],
        });
      }
      principal = {
        keyId: record.id,
        role: record.role,
        tenant: record.role === 'admin' ? (named ?? record.tenant) : record.tenant,
        allTenants: record.role === 'admin',
      };
    }
    if (!ALLOWED[access].includes(principal.role)) {
      throw new AppError('FORBIDDEN', `a ${principal.role} key may not do this (needs ${access})`, {
        statusCode: 403,
      });
    }
    // Not a child logger per request (an allocation on every call): the request line names the
    // key and tenant (app.ts), and routes log the tenant with what they did.
    request.principal = principal;
  });
});
