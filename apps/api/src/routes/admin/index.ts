import { apiKeyView } from '@recast/core/auth';
import {
  ApiKeyCreatedSchema,
  ApiKeyListSchema,
  ApiKeyViewSchema,
  errorResponses,
} from '@recast/core/contract';
import { AppError, parseOrThrow } from '@recast/core/errors';
import { RoleSchema, TenantIdSchema } from '@recast/core/model';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

const CreateKeySchema = z.strictObject({
  name: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
  role: RoleSchema,
  tenant: TenantIdSchema,
});

/** API key management (admin keys only): create (the key is shown once), list, revoke. */
export default async function adminRoutes(app: FastifyInstance) {
  const admin = { config: { access: 'admin' as const } };

  app.post(
    '/v1/admin/keys',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        summary: 'Create an API key (shown once)',
        body: CreateKeySchema,
        response: { 201: ApiKeyCreatedSchema, ...errorResponses(400, 401, 403, 429) },
      },
    },
    async (request, reply) => {
      const body = parseOrThrow(CreateKeySchema, request.body ?? {});
      const { key, record } = await app.apiKeys.create(body);
      request.log.info(
        { createdKeyId: record.id, role: record.role, forTenant: record.tenant },
        'API key created',
      );
      return reply.status(201).send({ ...apiKeyView(record), key });
    },
  );

  app.get(
    '/v1/admin/keys',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        summary: 'List API keys (never the keys themselves)',
        response: { 200: ApiKeyListSchema, ...errorResponses(401, 403, 429) },
      },
    },
    async () => ({
      object: 'list',
      data: (await app.apiKeys.list()).map(apiKeyView),
    }),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/admin/keys/:id',
    {
      ...admin,
      schema: {
        tags: ['admin'],
        summary: 'Revoke an API key, at once on every API process',
        params: z.strictObject({ id: z.string() }),
        response: { 200: ApiKeyViewSchema, ...errorResponses(401, 403, 404, 429) },
      },
    },
    async (request) => {
      const revoked = await app.apiKeys.revoke(request.params.id);
      if (!revoked)
        throw new AppError('NOT_FOUND', `API key ${request.params.id} not found`, { statusCode: 404 });
      request.log.info({ revokedKeyId: revoked.id }, 'API key revoked');
      return apiKeyView(revoked);
    },
  );
}
