import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseOrThrow } from '../app-input.js';
import { baseUrlOf, type EmulatorContext, sendData } from '../context.js';
import { ProblemError } from '../problem.js';
import { providerScope } from './provider-guard.js';
import { sendBytes } from './send-bytes.js';

const CreateFilesSchema = z.looseObject({
  files: z
    .array(
      z.looseObject({
        uri: z.string().optional(),
        filename: z.string().optional(),
        content_type: z.string().optional(),
        path: z.string().optional(),
        size: z.number().int().min(0).optional(),
      }),
    )
    .min(1)
    .max(100),
});

const UploadParams = z.object({ id: z.string() });
const UploadQuery = z.looseObject({ expires: z.string().optional(), signature: z.string().optional() });

export function registerFileRoutes(app: FastifyInstance, ctx: EmulatorContext): void {
  providerScope(app, ctx, 'upload', (scope) => {
    scope.post('/files', async (request, reply) => {
      const { files } = parseOrThrow(CreateFilesSchema, request.body ?? {}, '');
      const baseUrl = baseUrlOf(ctx, request);
      return sendData(
        ctx,
        reply,
        files.map((file) => ctx.files.create(file, baseUrl)),
      );
    });
  });

  // The presigned PUT and the file URIs are storage, not API: no bearer token, no rate limit.
  app.register(async (storage) => {
    storage.removeAllContentTypeParsers();
    storage.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: ctx.maxUploadBytes },
      (_req, body, done) => done(null, body),
    );

    storage.put('/uploads/:id', async (request, reply) => {
      const { id } = parseOrThrow(UploadParams, request.params, 'params');
      const { expires, signature } = parseOrThrow(UploadQuery, request.query, 'query');
      const problem = ctx.files.verify(id, expires, signature);
      if (problem) throw new ProblemError(403, 'forbidden', problem);
      const bytes = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      ctx.files.put(id, bytes, request.headers['content-type']);
      return reply.code(200).send();
    });

    storage.get('/files/:id/:name', async (request, reply) => {
      const { id } = parseOrThrow(UploadParams, request.params, 'params');
      const file = ctx.files.get(id);
      if (!file) throw new ProblemError(404, 'not_found', `file not found: ${id}`);
      return sendBytes(request, reply, file.bytes, file.contentType);
    });
  });
}
