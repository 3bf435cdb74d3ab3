import { createReadStream } from 'node:fs';
import type { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { z } from 'zod';
import { AppError } from '../errors/app-error.js';
import type { Keys } from '../infra/keys.js';
import type { Logger } from '../infra/logger.js';
import { redact } from '../media/range-reader.js';
import type { FileRecordRequest } from '../provider/inference-client.js';
import type { FileRecordWire } from '../provider/wire-schemas.js';
import { MEDIA_KINDS, type MediaKind } from './sniff.js';
import type { SpooledFile } from './spool.js';

/** A file the provider holds, as a task input may name it. */
export interface UploadedFile {
  uri: string;
  sha256: string;
  size: number;
  content_type: string;
  kind: MediaKind;
  /** A video's duration, read from its bytes before the upload. */
  seconds?: number;
  uploaded_at: string;
  /** True when an earlier upload of the same bytes was reused and nothing was sent. */
  deduped: boolean;
}

const IndexEntrySchema = z.object({
  uri: z.string(),
  size: z.coerce.number().int(),
  content_type: z.string(),
  kind: z.enum(MEDIA_KINDS),
  seconds: z.coerce.number().optional(),
  uploaded_at: z.string(),
});

export interface FileUploaderOptions {
  redis: Redis;
  keys: Keys;
  /** The provider's file API (`InferenceClient.createFile`). */
  provider: { createFile(file: FileRecordRequest): Promise<FileRecordWire> };
  /**
   * How long an uploaded file is reused. The provider's retention of uploads is not documented
   * (inferred: days); past this the same bytes are uploaded again rather than risk a dead uri.
   */
  ttlSeconds: number;
  /** Deadline for one PUT of the bytes. */
  putTimeoutMs: number;
  logger?: Logger;
}

/**
 * Uploads files to the provider once per distinct content: the dedupe index (a Redis hash per
 * tenant and SHA-256) maps the bytes to the provider's uri, and concurrent uploads of the same
 * bytes in this process share one. Two processes racing on new bytes may both upload; both uris
 * work and the later entry wins, so the race costs an upload, never a job.
 *
 * The index is per tenant: a shared one would tell a tenant that someone else holds a file.
 */
export class FileUploader {
  private readonly inFlight = new Map<string, Promise<UploadedFile>>();
  // The presigned URL is storage (S3-like), not the API: its own connections, and never the bearer.
  private readonly agent = new Agent({ connect: { timeout: 10_000 }, keepAliveTimeout: 10_000 });

  constructor(private readonly options: FileUploaderOptions) {}

  /** The provider uri of bytes this tenant uploaded before, if still within the reuse window. */
  async lookup(tenant: string, sha256: string): Promise<UploadedFile | undefined> {
    const hash = await this.options.redis.hgetall(this.options.keys.uploadedFile(tenant, sha256));
    const entry = IndexEntrySchema.safeParse(hash);
    if (!entry.success) return undefined;
    const { seconds, ...rest } = entry.data;
    return { ...rest, sha256, deduped: true, ...(seconds !== undefined ? { seconds } : {}) };
  }

  /** The provider uri for a spooled file: the indexed one, else a new upload (then indexed). */
  async upload(tenant: string, file: SpooledFile): Promise<UploadedFile> {
    const key = `${tenant}\u0000${file.sha256}`;
    const running = this.inFlight.get(key);
    if (running) return { ...(await running), deduped: true };
    const started = this.uploadOnce(tenant, file).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, started);
    return started;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async uploadOnce(tenant: string, file: SpooledFile): Promise<UploadedFile> {
    const known = await this.lookup(tenant, file.sha256);
    if (known) return known;
    const log = this.options.logger?.child({ tenant, sha256: file.sha256, field: file.field });
    const record = await this.options.provider.createFile({
      filename: file.filename,
      contentType: file.contentType,
      size: file.size,
    });
    await this.put(record.upload_url, file);
    const entry = {
      uri: record.uri,
      size: file.size,
      content_type: file.contentType,
      kind: file.kind,
      ...(file.seconds !== undefined ? { seconds: file.seconds } : {}),
      uploaded_at: new Date().toISOString(),
    };
    const key = this.options.keys.uploadedFile(tenant, file.sha256);
    await this.options.redis
      .multi()
      .del(key)
      .hset(key, Object.fromEntries(Object.entries(entry).map(([k, v]) => [k, String(v)])))
      .expire(key, this.options.ttlSeconds)
      .exec();
    log?.info({ bytes: file.size, uri: redact(record.uri) }, 'file uploaded to the provider');
    return { ...entry, sha256: file.sha256, deduped: false };
  }

  private async put(uploadUrl: string, file: SpooledFile): Promise<void> {
    let status: number;
    try {
      const response = await request(uploadUrl, {
        method: 'PUT',
        body: createReadStream(file.path),
        headers: { 'content-type': file.contentType, 'content-length': String(file.size) },
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.options.putTimeoutMs),
      });
      status = response.statusCode;
      await response.body.dump();
    } catch (error) {
      throw new AppError('PROVIDER_UNAVAILABLE', `${file.field}: uploading the file to the provider failed`, {
        statusCode: 503,
        retryable: true,
        cause: error,
      });
    }
    if (status < 200 || status >= 300) {
      throw new AppError(
        'PROVIDER_UNAVAILABLE',
        `${file.field}: the provider's storage refused the upload (HTTP ${status})`,
        { statusCode: status >= 500 ? 503 : 502, retryable: status >= 500 },
      );
    }
  }
}
