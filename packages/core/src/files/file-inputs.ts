import { Readable } from 'node:stream';
import { AppError } from '../errors/app-error.js';
import type { Logger } from '../infra/logger.js';
import type { MediaKind } from './sniff.js';
import { removeAll, type SpooledFile, spoolUpload, tooLarge } from './spool.js';
import type { FileUploader, UploadedFile } from './uploader.js';

/**
 * Files given as bytes (multipart parts, `data:` URIs) stand in the request body as placeholder
 * URLs until they are uploaded, so the body is validated exactly like one naming URLs, and nothing
 * is uploaded for a request that is refused. `.invalid` is a reserved TLD: it never resolves.
 * The placeholder is the content hash, so an Idempotency-Key replay with the same bytes matches.
 */
export const UPLOAD_PLACEHOLDER_ORIGIN = 'https://upload.recast.invalid';

export function placeholderFor(file: SpooledFile): string {
  return `${UPLOAD_PLACEHOLDER_ORIGIN}/sha256/${file.sha256}`;
}

/** Placeholder URL → the spooled bytes it stands for. */
export type PendingFiles = Map<string, SpooledFile>;

export interface FileInputLimits {
  /** Where temp files are written. */
  tmpDir: string;
  maxVideoBytes: number;
  maxImageBytes: number;
  /** A `data:` URI is held whole in memory (it is in a JSON body), so its limit is smaller. */
  maxDataUriBytes: number;
}

/** The spool options for a request field: `video` takes MP4/MOV, `images[n]` JPEG/PNG/WebP. */
export function spoolOptionsFor(
  field: string,
  kind: MediaKind,
  limits: FileInputLimits,
  extra: { filename?: string; maxBytes?: number; logger?: Logger } = {},
) {
  return {
    dir: limits.tmpDir,
    field,
    accept: [kind],
    maxBytes: extra.maxBytes ?? (kind === 'video' ? limits.maxVideoBytes : limits.maxImageBytes),
    probeVideo: kind === 'video',
    ...(extra.filename ? { filename: extra.filename } : {}),
    ...(extra.logger ? { logger: extra.logger } : {}),
  };
}

const DATA_URI = /^data:([^,]*?)(;base64)?,/i;

/**
 * Replaces `data:` URIs in a JSON job body's `video` and `images` with placeholders, their bytes
 * decoded into temp files (sniffed, size-limited, a video probed). Other values are left for the
 * schema to judge. On any error every temp file made so far is removed.
 */
export async function spoolDataUris(
  body: unknown,
  limits: FileInputLimits,
  logger?: Logger,
): Promise<{ body: unknown; files: PendingFiles }> {
  const files: PendingFiles = new Map();
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { body, files };
  const copy: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  const take = async (value: unknown, field: string, kind: MediaKind): Promise<unknown> => {
    if (typeof value !== 'string' || !/^data:/i.test(value)) return value;
    const file = await spoolDataUri(value, field, kind, limits, logger);
    const placeholder = placeholderFor(file);
    files.set(placeholder, file);
    return placeholder;
  };
  try {
    copy.video = await take(copy.video, 'video', 'video');
    if (Array.isArray(copy.images)) {
      const images: unknown[] = [];
      for (const [i, image] of copy.images.entries()) images.push(await take(image, `images[${i}]`, 'image'));
      copy.images = images;
    }
  } catch (error) {
    await removeAll(files.values());
    throw error;
  }
  return { body: copy, files };
}

async function spoolDataUri(
  value: string,
  field: string,
  kind: MediaKind,
  limits: FileInputLimits,
  logger: Logger | undefined,
): Promise<SpooledFile> {
  const match = DATA_URI.exec(value);
  if (!match?.[2]) {
    throw new AppError('VALIDATION_FAILED', `${field}: a data: URI must be base64 (data:<type>;base64,...)`, {
      statusCode: 400,
      issues: [{ path: field, message: 'a data: URI must be base64 (data:<type>;base64,...)' }],
    });
  }
  const encoded = value.slice(match[0].length);
  // Refuse by the encoded length before decoding anything.
  if (Math.floor((encoded.replace(/=+$/, '').length * 3) / 4) > limits.maxDataUriBytes) {
    throw tooLarge(field, limits.maxDataUriBytes);
  }
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(encoded)) {
    throw new AppError('VALIDATION_FAILED', `${field}: the data: URI is not valid base64`, {
      statusCode: 400,
      issues: [{ path: field, message: 'the data: URI is not valid base64' }],
    });
  }
  const bytes = Buffer.from(encoded, 'base64');
  return spoolUpload(
    Readable.from([bytes]),
    spoolOptionsFor(field, kind, limits, { maxBytes: limits.maxDataUriBytes, ...(logger ? { logger } : {}) }),
  );
}

/** The first of `video` / `images[n]` that holds a `data:` URI, if any. */
export function firstDataUriField(body: unknown): string | undefined {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const { video, images } = body as Record<string, unknown>;
  const isData = (v: unknown) => typeof v === 'string' && /^data:/i.test(v);
  if (isData(video)) return 'video';
  const index = Array.isArray(images) ? images.findIndex(isData) : -1;
  return index >= 0 ? `images[${index}]` : undefined;
}

/** The placeholder URL, when a value is one. */
export function isPlaceholder(value: string): boolean {
  return value.startsWith(`${UPLOAD_PLACEHOLDER_ORIGIN}/`);
}

/**
 * Refuses placeholders that stand for no file of this request (a client cannot name one), and
 * a request with files when this deployment cannot upload them.
 */
export function checkPlaceholders(
  input: { video: string; images: readonly string[] },
  files: PendingFiles,
  uploadsEnabled: boolean,
): void {
  const fields: [string, string][] = [
    ['video', input.video],
    ...input.images.map((v, i) => [`images[${i}]`, v] as [string, string]),
  ];
  for (const [field, value] of fields) {
    if (isPlaceholder(value) && !files.has(value)) {
      throw new AppError('VALIDATION_FAILED', `${field}: ${UPLOAD_PLACEHOLDER_ORIGIN} URLs are reserved`, {
        statusCode: 400,
        issues: [{ path: field, message: `${UPLOAD_PLACEHOLDER_ORIGIN} URLs are reserved` }],
      });
    }
  }
  if (files.size > 0 && !uploadsEnabled) {
    const field = [...files.values()][0]?.field ?? 'video';
    throw new AppError('FILE_UPLOADS_DISABLED', `${field}: file uploads are not enabled on this deployment`, {
      statusCode: 400,
      issues: [{ path: field, message: 'file uploads are not enabled (no INFERENCE_API_KEY on the API)' }],
    });
  }
}

/** Uploads each distinct file once (deduped by content) and maps placeholders to provider uris. */
export async function uploadPending(
  uploader: FileUploader,
  tenant: string,
  files: PendingFiles,
): Promise<Map<string, UploadedFile>> {
  const out = new Map<string, UploadedFile>();
  for (const [placeholder, file] of files) out.set(placeholder, await uploader.upload(tenant, file));
  return out;
}
