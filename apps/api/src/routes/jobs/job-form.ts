import type { Multipart } from '@fastify/multipart';
import { AppError, isAppError } from '@recast/core/errors';
import {
  type FileInputLimits,
  type PendingFiles,
  placeholderFor,
  removeAll,
  type SpooledFile,
  spoolOptionsFor,
  spoolUpload,
} from '@recast/core/files';
import type { Logger } from '@recast/core/infra';
import { readJsonText } from '@recast/core/model';
import type { FastifyRequest } from 'fastify';

const IMAGE_PARTS = new Set(['images[]', 'images']);

function invalid(path: string, message: string): AppError {
  return new AppError('VALIDATION_FAILED', `${path}: ${message}`, {
    statusCode: 400,
    issues: [{ path, message }],
  });
}

/**
 * Reads a `multipart/form-data` job: a `job` field (the JSON body, as for `application/json`) and
 * file parts `video` and `images[]` (appended after any `images` URLs in `job`). Each file streams
 * to a temp file (see core files/spool.ts) as it arrives; the body comes back with placeholder
 * URLs for them. On any error, every temp file of the request is gone before it is thrown.
 */
export async function readJobForm(
  request: FastifyRequest,
  limits: FileInputLimits,
  logger: Logger,
): Promise<{ body: Record<string, unknown>; files: PendingFiles }> {
  let job: Record<string, unknown> | undefined;
  let video: SpooledFile | undefined;
  const images: SpooledFile[] = [];
  const all: SpooledFile[] = [];
  try {
    let parts: AsyncIterableIterator<Multipart>;
    try {
      parts = request.parts();
    } catch (error) {
      throw invalid('body', error instanceof Error ? error.message : String(error));
    }
    for await (const part of parts) {
      if (part.type === 'field') {
        if (part.fieldname !== 'job') {
          throw invalid(
            part.fieldname,
            'unknown field: a form has a `job` field and `video`, `images[]` files',
          );
        }
        if (job) throw invalid('job', 'given twice');
        job = parseJobField(part.value);
        continue;
      }
      let field: string;
      if (part.fieldname === 'video') {
        if (video) throw invalid('video', 'given twice');
        field = 'video';
      } else if (IMAGE_PARTS.has(part.fieldname)) {
        const offset = Array.isArray(job?.images) ? job.images.length : 0;
        field = `images[${offset + images.length}]`;
      } else {
        throw invalid(part.fieldname, 'unknown file part: files go in `video` and `images[]`');
      }
      const kind = field === 'video' ? 'video' : 'image';
      const file = await spoolUpload(
        part.file,
        spoolOptionsFor(field, kind, limits, { filename: part.filename, logger }),
      );
      all.push(file);
      if (kind === 'video') video = file;
      else images.push(file);
    }
    if (!job) throw invalid('job', 'is required: a form field holding the job as JSON');
    if (video && job.video !== undefined) throw invalid('video', 'given both as a file and in `job`');
    const files: PendingFiles = new Map(all.map((f) => [placeholderFor(f), f]));
    const body: Record<string, unknown> = { ...job };
    if (video) body.video = placeholderFor(video);
    if (images.length > 0) {
      const urls = Array.isArray(job.images) ? job.images : job.images === undefined ? [] : undefined;
      if (!urls) throw invalid('images', 'must be an array of image URLs when files are added to it');
      body.images = [...urls, ...images.map(placeholderFor)];
    }
    return { body, files };
  } catch (error) {
    await removeAll(all);
    if (isAppError(error)) throw error;
    // @fastify/multipart's own limits carry a 4xx status: the error handler maps those.
    if (typeof (error as { statusCode?: unknown }).statusCode === 'number') throw error;
    throw new AppError('UPLOAD_INCOMPLETE', 'the form ended before it was complete', {
      statusCode: 400,
      issues: [{ path: 'body', message: error instanceof Error ? error.message : String(error) }],
      cause: error,
    });
  }
}

/** The `job` field, read by the same rule as a JSON body (`__proto__` is a reserved key). */
function parseJobField(value: unknown): Record<string, unknown> {
  const read = readJsonText(String(value));
  if (!read.ok) {
    if (read.issue.message === 'reserved key') throw invalid(read.issue.path, 'reserved key');
    throw invalid('job', 'is not valid JSON');
  }
  const parsed = read.value;
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    throw invalid('job', 'must be a JSON object');
  return parsed as Record<string, unknown>;
}
