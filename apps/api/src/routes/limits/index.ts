import { errorResponses, LimitsSchema } from '@recast/core/contract';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';

export interface LimitsRoutesOptions {
  limits: Omit<z.infer<typeof LimitsSchema>, 'uploads'>;
}

/**
 * `GET /v1/limits`: the sizes this deployment accepts. A client that knows them refuses a file
 * that is too large before sending any of it: the server's own 413 comes while the body is still
 * being sent, and over TCP a client writing into a connection the server has closed may see a
 * reset before it reads the answer.
 */
export default async function limitsRoutes(app: FastifyInstance, options: LimitsRoutesOptions) {
  app.get(
    '/v1/limits',
    {
      schema: {
        tags: ['limits'],
        summary: 'What this deployment accepts (manifest and upload sizes)',
        response: { 200: LimitsSchema, ...errorResponses(401, 429) },
      },
    },
    async () => {
      const files = app.recast.files?.limits;
      return {
        ...options.limits,
        uploads: files
          ? {
              max_video_bytes: files.maxVideoBytes,
              max_image_bytes: files.maxImageBytes,
              max_data_uri_bytes: files.maxDataUriBytes,
            }
          : null,
      };
    },
  );
}
