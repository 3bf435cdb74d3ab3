import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema } from 'fastify';
import fp from 'fastify-plugin';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import type { OpenAPIV3_1 } from 'openapi-types';

/** Fastify's `/v1/jobs/:id` is OpenAPI's `/v1/jobs/{id}`. */
const openApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

/** The part of the document edited here (openapi-types' 3.1 types do not compose with 3.0's). */
interface Document {
  paths?: Record<string, Record<string, { requestBody?: { required?: boolean; content?: object } }>>;
}

/** The operation's request body with the media types declared in the route's `requestBodies`. */
function withRequestBodies(doc: Document, extra: Map<string, Record<string, OpenAPIV3_1.MediaTypeObject>>) {
  for (const [key, content] of extra) {
    const [method = '', path = ''] = key.split(' ');
    const operation = doc.paths?.[path]?.[method];
    if (!operation) continue;
    operation.requestBody = { required: true, content: { ...operation.requestBody?.content, ...content } };
  }
  return doc;
}

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
  interface FastifyContextConfig {
    /**
     * Request bodies the zod `body` cannot say (multipart forms, manifests as text): OpenAPI media
     * type objects by content type, merged into the operation's `requestBody` beside the JSON one.
     */
    requestBodies?: Record<string, OpenAPIV3_1.MediaTypeObject>;
  }
  interface FastifyInstance {
    /** Every route as registered (method, url, whether it is documented): for the docs' own test. */
    routeTable: { method: string; url: string; hidden: boolean; schema: FastifySchema | undefined }[];
  }
}

export const openApiPlugin = fp(async (app: FastifyInstance) => {
  const table: FastifyInstance['routeTable'] = [];
  const requestBodies = new Map<string, Record<string, OpenAPIV3_1.MediaTypeObject>>();
  app.decorate('routeTable', table);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method === 'HEAD') continue;
      const schema = route.schema as (FastifySchema & { hide?: boolean }) | undefined;
      table.push({ method, url: route.url, hidden: schema?.hide === true, schema });
      const bodies = route.config?.requestBodies;
      if (bodies) requestBodies.set(`${method.toLowerCase()} ${openApiPath(route.url)}`, bodies);
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
    transformObject: (input) =>
      withRequestBodies(jsonSchemaTransformObject(input) as Document, requestBodies) as ReturnType<
        typeof jsonSchemaTransformObject
      >,
  });
  await app.register(async (docs) => {
    docs.addHook('onRoute', (route) => {
      route.config = { ...(route.config as object), access: 'public' };
    });
    await docs.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  });
});
