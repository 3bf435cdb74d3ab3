import multipart from '@fastify/multipart';
import { errorResponses, FileViewSchema } from '@recast/core/contract';
import { AppError } from '@recast/core/errors';
import { MEDIA_KINDS, removeAll, type SpooledFile, spoolUpload, type UploadedFile } from '@recast/core/files';
import type { Logger } from '@recast/core/infra';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { closeAfterEarlyAnswers } from '../../early-answer.js';
import { tenantOf } from '../../tenant.js';

const SHA256 = /^[0-9a-f]{64}$/;

function fileView(file: UploadedFile) {
  return {
    object: 'file' as const,
    uri: file.uri,
    sha256: file.sha256,
    size: file.size,
    content_type: file.content_type,
    kind: file.kind,
    seconds: file.seconds ?? null,
    uploaded_at: file.uploaded_at,
    deduped: file.deduped,
  };
}

/**
 * Files uploaded through Recast for use in jobs and manifests (the CLI sends local paths this way):
 * the same sniffing, limits, dedupe and provider upload as a multipart job, and the answer's `uri`
 * goes where a URL would. `GET /v1/files/:sha256` tells whether bytes were uploaded already, so a
 * client that knows the hash need not send them again.
 */
export default async function fileRoutes(app: FastifyInstance) {
  const files = app.recast.files;
  await app.register(multipart, {
    limits: {
      fields: 0,
      files: 1,
      parts: 1,
      fileSize: Math.max(files?.limits.maxVideoBytes ?? 0, files?.limits.maxImageBytes ?? 0, 1) + 1,
    },
  });
  // An answer sent before the body was read to its end closes the connection, lingering so the
  // client reads it (see early-answer.ts).
  closeAfterEarlyAnswers(app);

  function enabled() {
    if (!files) {
      throw new AppError('FILE_UPLOADS_DISABLED', 'file uploads are not enabled on this deployment', {
        statusCode: 400,
        issues: [{ path: 'file', message: 'file uploads are not enabled (no INFERENCE_API_KEY on the API)' }],
      });
    }
    return files;
  }

  app.post(
    '/v1/files',
    {
      // An upload writes (disk, the provider's file API, the tenant's dedupe index): not for viewers.
      config: {
        access: 'write',
        requestBodies: {
          'multipart/form-data': {
            schema: {
              type: 'object',
              required: ['file'],
              properties: {
                file: {
                  type: 'string',
                  format: 'binary',
                  description: 'one MP4/MOV video or JPEG/PNG/WebP image (the bytes are sniffed)',
                },
              },
            },
          },
        },
      },
      schema: {
        tags: ['files'],
        summary: 'Upload one file for use in jobs and manifests (once per content)',
        description:
          'multipart/form-data with one `file` part: MP4/MOV, or JPEG/PNG/WebP (the bytes are sniffed). 201 when sent to the provider, 200 when the same bytes were there already.',
        response: {
          201: FileViewSchema,
          200: FileViewSchema,
          ...errorResponses(400, 401, 403, 413, 415, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const { uploader, limits } = enabled();
      const tenant = tenantOf(request);
      const log = request.log.child({ tenant }) as unknown as Logger;
      if (!request.isMultipart()) {
        throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'body: send multipart/form-data with one `file` part', {
          statusCode: 415,
          issues: [{ path: 'body', message: 'multipart/form-data with one `file` part' }],
        });
      }
      let spooled: SpooledFile | undefined;
      try {
        const part = await request.file();
        if (part?.fieldname !== 'file') {
          throw new AppError('VALIDATION_FAILED', 'file: one file part named `file` is required', {
            statusCode: 400,
            issues: [{ path: part?.fieldname ?? 'file', message: 'one file part named `file` is required' }],
          });
        }
        // A video or an image: whichever the bytes are, within that kind's limit.
        spooled = await spoolUpload(part.file, {
          dir: limits.tmpDir,
          field: 'file',
          accept: MEDIA_KINDS,
          maxBytes: Math.max(limits.maxVideoBytes, limits.maxImageBytes),
          probeVideo: true,
          filename: part.filename,
          logger: log,
        });
        const max = spooled.kind === 'video' ? limits.maxVideoBytes : limits.maxImageBytes;
        if (spooled.size > max) {
          throw new AppError('FILE_TOO_LARGE', `file: the ${spooled.kind} is larger than ${max} bytes`, {
            statusCode: 413,
            issues: [{ path: 'file', message: `larger than the ${max}-byte limit for ${spooled.kind}s` }],
            details: { limit_bytes: max },
          });
        }
        const uploaded = await uploader.upload(tenant, spooled);
        log.info({ sha256: uploaded.sha256, bytes: uploaded.size, deduped: uploaded.deduped }, 'file stored');
        return reply.status(uploaded.deduped ? 200 : 201).send(fileView(uploaded));
      } finally {
        if (spooled) await removeAll([spooled]);
      }
    },
  );

  app.get<{ Params: { sha256: string } }>(
    '/v1/files/:sha256',
    {
      schema: {
        tags: ['files'],
        summary: 'A file this tenant uploaded before, by SHA-256',
        params: z.strictObject({ sha256: z.string() }),
        response: { 200: FileViewSchema, ...errorResponses(400, 401, 404, 429) },
      },
    },
    async (request) => {
      const { uploader } = enabled();
      const sha256 = request.params.sha256.toLowerCase();
      const known = SHA256.test(sha256) ? await uploader.lookup(tenantOf(request), sha256) : undefined;
      if (!known) throw new AppError('NOT_FOUND', `no file with sha256 ${sha256}`, { statusCode: 404 });
      return fileView(known);
    },
  );
}
