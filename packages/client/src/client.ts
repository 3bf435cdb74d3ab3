import createClient, { type Client } from 'openapi-fetch';
import { type Body, toStream } from './body.js';
import {
  describeCause,
  isAbort,
  RecastApiError,
  RecastNetworkError,
  RecastUnexpectedResponseError,
} from './errors.js';
import { type FollowEventsOptions, followEvents, type RecastEvent } from './events.js';
import type { paths } from './generated/api.js';
import { type Page, pages } from './pages.js';
import { pollUntil, type WaitOptions } from './poll.js';
import type {
  Batch,
  BatchAccepted,
  BatchesQuery,
  BatchJobsQuery,
  BatchParams,
  BatchQuote,
  Job,
  JobRequest,
  JobsQuery,
  JobTimeline,
  UploadedFile,
} from './types.js';

/** What openapi-fetch calls: a Request, and the Node-only extensions (an undici `dispatcher`). */
export type FetchLike = (input: Request, init?: Record<string, unknown>) => Promise<Response>;

export interface RecastClientOptions {
  /** The API's base URL, optionally with a path prefix (`https://host/recast`). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …`. */
  apiKey?: string;
  /** Sent as `X-Tenant`: an admin key acting for a tenant (other keys decide their own). */
  tenant?: string;
  userAgent?: string;
  /** The fetch to send with (default: the global one); e.g. one with an undici Agent's timeouts. */
  fetch?: FetchLike;
  /** Aborts every request of this client (Ctrl-C). */
  signal?: AbortSignal;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** This call's own fetch: an upload whose answer may take minutes, say. */
  fetch?: FetchLike;
}

export const TERMINAL_JOB_STATES: readonly Job['state'][] = ['completed', 'failed', 'cancelled', 'expired'];
export const FINISHED_BATCH_STATUSES: readonly Batch['status'][] = [
  'completed',
  'completed_with_errors',
  'cancelled',
  'expired',
];

type Result<D> = { data?: D; error?: unknown; response: Response };

/**
 * Recast's public HTTP API, typed from its OpenAPI document. `api` is the plain openapi-fetch
 * client (every operation, typed paths, parameters and bodies); `send` turns its result into the
 * answer's data or a typed error; the methods below are what every caller otherwise rewrites.
 */
export class RecastClient {
  readonly api: Client<paths>;
  readonly baseUrl: string;
  private readonly fetch: FetchLike;

  constructor(readonly options: RecastClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init as RequestInit));
    const headers: Record<string, string> = {};
    if (options.userAgent) headers['user-agent'] = options.userAgent;
    if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
    if (options.tenant) headers['x-tenant'] = options.tenant;
    this.api = createClient<paths>({
      baseUrl: this.baseUrl,
      headers,
      fetch: (request) => this.fetch(request),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /**
   * The data of a successful answer; a non-2xx answer throws `RecastApiError` (its `code`,
   * `issues`, `details`), a transport failure `RecastNetworkError`, an abort the abort's reason.
   */
  async send<D>(call: Promise<Result<D>>): Promise<D> {
    return (await this.sendFull(call)).data;
  }

  /** As `send`, with the Response (its status and headers: ETag, Location, Idempotent-Replayed). */
  async sendFull<D>(call: Promise<Result<D>>): Promise<{ data: D; response: Response }> {
    const answer = await this.sendIfModified(call);
    if (!answer)
      throw new RecastUnexpectedResponseError('the API answered 304 to a request that was not conditional');
    return answer;
  }

  /** As `sendFull` for a conditional request (`If-None-Match`): undefined when it answers 304. */
  async sendIfModified<D>(call: Promise<Result<D>>): Promise<{ data: D; response: Response } | undefined> {
    let result: Result<D>;
    try {
      result = await call;
    } catch (err) {
      throw this.transportError(err);
    }
    const { response } = result;
    if (response.status === 304) return undefined;
    if (!response.ok) throw RecastApiError.from(response, result.error);
    return { data: result.data as D, response };
  }

  /** Options for one call: the client's signal joined with the call's own. */
  init(options: CallOptions = {}): { signal?: AbortSignal; fetch?: (request: Request) => Promise<Response> } {
    const signals = [this.options.signal, options.signal].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    const own = options.fetch;
    return {
      ...(signal ? { signal } : {}),
      ...(own ? { fetch: (request: Request) => own(request) } : {}),
    };
  }

  private transportError(err: unknown): unknown {
    if (isAbort(err)) return err;
    if (err instanceof SyntaxError) {
      return new RecastUnexpectedResponseError(
        `the API answered something that is not JSON: ${err.message}`,
        {
          cause: err,
        },
      );
    }
    return new RecastNetworkError(`cannot reach Recast at ${this.baseUrl}: ${describeCause(err)}`, {
      cause: err,
    });
  }

  /**
   * Submit a job. With an idempotency key, sending the same body again returns the same job
   * (`created: false`) and a different body under that key is refused (409/422 `RecastApiError`).
   */
  async submitJob(
    body: JobRequest,
    options: CallOptions & { idempotencyKey?: string } = {},
  ): Promise<{ job: Job; created: boolean }> {
    const { data, response } = await this.sendFull(
      this.api.POST('/v1/jobs', {
        body,
        ...(options.idempotencyKey
          ? { params: { header: { 'idempotency-key': options.idempotencyKey } } }
          : {}),
        ...this.init(options),
      }),
    );
    return { job: data, created: response.status === 202 };
  }

  /** Submit a job with its files as form parts (uploaded to the provider once per content). */
  async submitJobWithFiles(
    job: Omit<JobRequest, 'video' | 'images'> & { video?: string; images?: string[] },
    files: { video?: Blob; images?: Blob[] },
    options: CallOptions & { idempotencyKey?: string } = {},
  ): Promise<{ job: Job; created: boolean }> {
    const form = new FormData();
    form.append('job', JSON.stringify(job));
    if (files.video) form.append('video', files.video, 'video');
    for (const [i, image] of (files.images ?? []).entries()) form.append('images[]', image, `image-${i + 1}`);
    const { data, response } = await this.sendFull(
      this.api.POST('/v1/jobs', {
        body: { job: '' },
        bodySerializer: () => form,
        ...(options.idempotencyKey
          ? { params: { header: { 'idempotency-key': options.idempotencyKey } } }
          : {}),
        ...this.init(options),
      }),
    );
    return { job: data, created: response.status === 202 };
  }

  getJob(id: string, options: CallOptions = {}): Promise<Job> {
    return this.send(this.api.GET('/v1/jobs/{id}', { params: { path: { id } }, ...this.init(options) }));
  }

  /** The states a job entered, and its provider task's status moves and logs. */
  getJobTimeline(id: string, options: CallOptions = {}): Promise<JobTimeline> {
    return this.send(
      this.api.GET('/v1/jobs/{id}/timeline', { params: { path: { id } }, ...this.init(options) }),
    );
  }

  getBatch(id: string, options: CallOptions = {}): Promise<Batch> {
    return this.send(this.api.GET('/v1/batches/{id}', { params: { path: { id } }, ...this.init(options) }));
  }

  /**
   * Poll a job until it is completed, failed or cancelled, asking with `If-None-Match` so an
   * unchanged job costs the API no read (304). Transient failures are retried (see WaitOptions).
   */
  waitForJob(id: string, options: WaitOptions<Job> = {}): Promise<Job> {
    return pollUntil(
      this,
      (etag, init) =>
        this.api.GET('/v1/jobs/{id}', {
          params: { path: { id }, ...(etag ? { header: { 'if-none-match': etag } } : {}) },
          ...init,
        }) as Promise<Result<Job>>,
      (job) => TERMINAL_JOB_STATES.includes(job.state),
      options,
    );
  }

  /** Poll a batch until it is completed, completed_with_errors or cancelled (as waitForJob). */
  waitForBatch(id: string, options: WaitOptions<Batch> = {}): Promise<Batch> {
    return pollUntil(
      this,
      (etag, init) =>
        this.api.GET('/v1/batches/{id}', {
          params: { path: { id }, ...(etag ? { header: { 'if-none-match': etag } } : {}) },
          ...init,
        }) as Promise<Result<Batch>>,
      (batch) => FINISHED_BATCH_STATUSES.includes(batch.status),
      options,
    );
  }

  /**
   * The tenant's job and batch events (`GET /v1/events`), reconnecting with the last event's id
   * after a dropped connection, so none is missed or repeated. Ends when the signal aborts.
   */
  events(options: FollowEventsOptions = {}): AsyncGenerator<RecastEvent> {
    return followEvents(this, options);
  }

  /** Upload a manifest (JSONL or CSV) from a stream, a string or a Blob, never held in memory. */
  submitManifest(body: Body, options: ManifestOptions): Promise<BatchAccepted> {
    return this.postManifest(body, {
      ...options,
      params: options.params,
    }) as Promise<BatchAccepted>;
  }

  /** Validate and price a manifest without creating anything (`dry_run=true`). */
  quoteManifest(body: Body, options: ManifestOptions): Promise<BatchQuote> {
    return this.postManifest(body, {
      ...options,
      params: { ...options.params, dry_run: 'true' as const },
    }) as Promise<BatchQuote>;
  }

  private postManifest(
    body: Body,
    options: Omit<ManifestOptions, 'params'> & { params?: BatchParams },
  ): Promise<BatchAccepted | BatchQuote> {
    const type = options.format === 'csv' ? 'text/csv' : 'application/x-ndjson';
    return this.send(
      this.api.POST('/v1/batches', {
        params: { query: options.params ?? {} },
        body: '',
        bodySerializer: () => toStream(body),
        headers: {
          'content-type': type,
          ...(options.size !== undefined ? { 'content-length': String(options.size) } : {}),
        },
        // A streamed request body must say so (fetch's rule).
        duplex: 'half',
        ...this.init(options),
      } as never),
    ) as Promise<BatchAccepted | BatchQuote>;
  }

  /**
   * Upload one file for jobs and manifests (`POST /v1/files`), streamed as a multipart body;
   * `onProgress` hears the bytes sent so far. The answer's `uri` goes where a URL would.
   */
  async uploadFile(
    file: Blob,
    options: CallOptions & { filename?: string; onProgress?: (bytes: number) => void } = {},
  ): Promise<UploadedFile> {
    const form = new FormData();
    form.append('file', file, options.filename ?? 'upload');
    // The form as a stream (fetch's own multipart encoding), counted as it is sent.
    const encoded = new Response(form);
    const contentType = encoded.headers.get('content-type') ?? 'multipart/form-data';
    let sent = 0;
    const counted = encoded.body!.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          sent += chunk.byteLength;
          options.onProgress?.(sent);
          controller.enqueue(chunk);
        },
      }),
    );
    return this.send(
      this.api.POST('/v1/files', {
        body: { file },
        bodySerializer: () => counted,
        headers: { 'content-type': contentType },
        duplex: 'half',
        ...this.init(options),
      } as never),
    ) as Promise<UploadedFile>;
  }

  /** Every job of a listing, page after page (`next_cursor`), newest first unless `order: 'asc'`. */
  listJobs(query: JobsQuery = {}, options: CallOptions = {}): AsyncGenerator<Job> {
    return pages(
      (cursor) =>
        this.send(
          this.api.GET('/v1/jobs', {
            params: { query: { ...query, ...(cursor ? { cursor } : {}) } },
            ...this.init(options),
          }),
        ) as Promise<Page<Job>>,
    );
  }

  /** Every batch, page after page. */
  listBatches(query: BatchesQuery = {}, options: CallOptions = {}): AsyncGenerator<Batch> {
    return pages(
      (cursor) =>
        this.send(
          this.api.GET('/v1/batches', {
            params: { query: { ...query, ...(cursor ? { cursor } : {}) } },
            ...this.init(options),
          }),
        ) as Promise<Page<Batch>>,
    );
  }

  /** Every job of a batch (optionally in one state), page after page. */
  listBatchJobs(id: string, query: BatchJobsQuery = {}, options: CallOptions = {}): AsyncGenerator<Job> {
    return pages(
      (cursor) =>
        this.send(
          this.api.GET('/v1/batches/{id}/jobs', {
            params: { path: { id }, query: { ...query, ...(cursor ? { cursor } : {}) } },
            ...this.init(options),
          }),
        ) as Promise<Page<Job>>,
    );
  }
}

export interface ManifestOptions extends CallOptions {
  format: 'jsonl' | 'csv';
  /** name, mode, max_cost_usd, defaults, callback_url, metadata (as the query of POST /v1/batches). */
  params?: Omit<BatchParams, 'dry_run'>;
  /** The body's length when known (a file's size): sent as Content-Length. */
  size?: number;
}

export function createRecastClient(options: RecastClientOptions): RecastClient {
  return new RecastClient(options);
}
