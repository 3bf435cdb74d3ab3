import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema } from 'fastify';
import fp from 'fastify-plugin';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';

/**
 * OpenAPI 3, generated from the zod schemas the routes declare (requests: the very schemas each
 * handler parses with; answers: core/api/responses.ts), served at /docs (UI) and /docs/json.
 *
 * Why the schemas are not also Fastify's validators: every handler already parses its input with
 * `parseOrThrow`, which turns zod issues into Recast's one error shape (`VALIDATION_FAILED`, each
 * issue with its field path, query and manifest rows named the same way), so Fastify's own
 * validation is switched off here rather than run twice with a second error format. Answers are
 * serialised as plain JSON (not through the schemas): the tests check real answers against the
 * documented schemas instead, so a view and its documentation cannot drift apart unnoticed.
 */
declare module 'fastify' {
  interface FastifyInstance {
    /** Every route as registered (method, url, whether it is documented): for the docs' own test. */
    routeTable: { method: string; url: string; hidden: boolean; schema: FastifySchema | undefined }[];
  }
}

export const openApiPlugin = fp(async (app: FastifyInstance) => {
  const table: FastifyInstance['routeTable'] = [];
  app.decorate('routeTable', table);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method === 'HEAD') continue;
      const schema = route.schema as (FastifySchema & { hide?: boolean }) | undefined;
      table.push({ method, url: route.url, hidden: schema?.hide === true, schema });
    }
  });
  app.setValidatorCompiler(() => (data) => ({ value: data }));
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Recast API',
        version: '0.1.0',
        description:
          'Batch orchestration of character-replacement video jobs (pruna/p-video-replace): submit jobs and ' +
          'manifests, follow them, and keep spend within budgets. Money is integer micro-dollars (and exact ' +
          'decimal dollar strings); times are ISO-8601 UTC.',
      },
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer rk_…' },
        },
      },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(async (docs) => {
    docs.addHook('onRoute', (route) => {
      route.config = { ...(route.config as object), access: 'public' };
    });
    await docs.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  });
});
