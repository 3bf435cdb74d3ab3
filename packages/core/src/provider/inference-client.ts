import { Pool } from 'undici';
import { z } from 'zod';
import { AppError } from '../errors/app-error.js';
import type { Logger } from '../infra/logger.js';
import { unwrapEnvelope } from './envelope.js';
import {
  badResponse,
  errorFromEnvelope,
  errorFromResponse,
  errorFromTransport,
  InferenceError,
  type RequestContext,
} from './inference-error.js';
import { DEFAULT_MAX_RETRY_AFTER_MS, type RateLimitInfo, readRateLimit } from './rate-limit.js';
import { StatusNumberingSchema } from './status.js';
import {
  type Task,
  type TaskList,
  type TaskResult,
  type TaskStatusInfo,
  toTask,
  toTaskList,
  toTaskResult,
  toTaskStatusInfo,
} from './task.js';
import {
  FileRecordsWireSchema,
  type FileRecordWire,
  TaskIdSchema,
  TaskListWireSchema,
  TaskResultWireSchema,
  TaskStatusWireSchema,
  TaskWireSchema,
} from './wire-schemas.js';

export const DEFAULT_APP = 'pruna/p-video-replace';

/** Plain data options (what config can carry); the logger and callback join them below. */
export const InferenceClientConfigSchema = z.object({
  /** e.g. `https://api.inference.sh`; may carry a path prefix (`http://emulator:8080/v1`). */
  baseUrl: z.url({ protocol: /^https?$/ }),
  apiKey: z.string().min(1),
  /** The app to run, optionally pinned: `pruna/p-video-replace@11n0716p`. */
  app: z.string().min(1).default(DEFAULT_APP),
  /** Pool size: sockets kept open to the provider. */
  connections: z.number().int().positive().default(16),
  connectTimeoutMs: z.number().int().positive().default(10_000),
  /** Deadline for one call, headers and body included; also the headers and body idle timeouts. */
  requestTimeoutMs: z.number().int().positive().default(30_000),
  statusNumbering: StatusNumberingSchema.default('current'),
  userAgent: z.string().min(1).default('recast-inference-client/0.1'),
  /** Upper bound for a provider's Retry-After / X-RateLimit-Reset hint. */
  maxRetryAfterMs: z.number().int().nonnegative().default(DEFAULT_MAX_RETRY_AFTER_MS),
  /** Answers bigger than this are refused (a task with huge logs must not exhaust memory). */
  maxResponseBytes: z
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
});
export type InferenceClientConfig = z.infer<typeof InferenceClientConfigSchema>;

/** The provider calls the client makes, named for metrics (a path would carry task ids). */
export type InferenceEndpoint = 'run' | 'get_task' | 'get_status' | 'cancel' | 'list' | 'create_file';

/** One finished exchange with the provider: its HTTP status, or how it failed without one. */
export interface ProviderResponse {
  endpoint: InferenceEndpoint;
  status: number | 'timeout' | 'network';
  ms: number;
}

/** A turn in a shared quota of the provider's, taken before one request; end() after its answer. */
export interface RequestTurn {
  /** The request ended; `rateLimited` when its answer was a 429 (the whole quota pauses). */
  end(rateLimited: { retryAfterMs?: number | undefined } | undefined): Promise<void>;
}

/**
 * Asked before every request: waits for the request's turn in the quota its endpoint counts
 * against (undefined: none), or throws PROVIDER_RATE_LIMITED when the wait would be too long.
 */
export type RequestAdmission = (endpoint: InferenceEndpoint) => Promise<RequestTurn | undefined>;

export interface InferenceClientOptions extends z.input<typeof InferenceClientConfigSchema> {
  logger?: Logger;
  /** The shared quotas every request waits its turn in (see useAdmission). */
  admission?: RequestAdmission;
  /** Called with the rate-limit headers of every answer that carries them (a shared limiter feeds on it). */
  onRateLimitInfo?: (info: RateLimitInfo) => void;
  /** Called once per exchange, answered or not (metrics count them by endpoint and status). */
  onResponse?: (response: ProviderResponse) => void;
}

export interface RunParams {
  /** The app's input (already validated against the app's schema by the caller). */
  input: Record<string, unknown>;
  /** Called once when the task ends; carry an unguessable per-task token in it. */
  webhook?: string;
  metadata?: Record<string, unknown>;
}

/** One file to create at the provider (`POST /files`); the bytes follow with a PUT to its upload_url. */
export interface FileRecordRequest {
  filename: string;
  contentType: string;
  size: number;
}

/** One condition of the provider's list filters (the SDK's `{field, operator, value}`). */
export interface ListFilter {
  field: string;
  operator: 'eq' | 'neq' | 'in' | 'not_in' | 'contains' | 'like' | 'ilike' | 'is_null' | 'is_not_null';
  value?: unknown;
}

export interface ListParams {
  /** The previous page's `nextCursor`; omit for the first page. */
  cursor?: string;
  limit?: number;
  /** Conditions every listed task meets (all of them); none lists every task. */
  filters?: readonly ListFilter[];
}

/** A 2xx answer, envelope removed. */
interface Answer {
  data: unknown;
  status: number;
}

/**
 * Client for the inference API (see shared/inference-api.md): one undici Pool to the provider's origin,
 * explicit timeouts, every answer validated with zod, every failure an `InferenceError` with a stable
 * code and a retryable flag. It never retries by itself: whether a retry is safe (a `run` that timed
 * out may have created a task) is the caller's decision.
 */
export class InferenceClient {
  /** The parsed options, without the API key (so logging the config cannot leak it). */
  readonly config: Readonly<Omit<InferenceClientConfig, 'apiKey'>>;
  // An ES private field: invisible to JSON.stringify and util.inspect, unlike a TS `private`.
  readonly #authorization: string;
  private readonly pool: Pool;
  private readonly origin: string;
  private readonly pathPrefix: string;
  private readonly logger: Logger | undefined;
  private readonly onRateLimitInfo: ((info: RateLimitInfo) => void) | undefined;
  private readonly onResponse: ((response: ProviderResponse) => void) | undefined;
  private latestRateLimit: RateLimitInfo | undefined;
  private admission: RequestAdmission | undefined;

  constructor(options: InferenceClientOptions) {
    const { logger, onRateLimitInfo, onResponse, admission, ...rest } = options;
    this.admission = admission;
    const parsed = InferenceClientConfigSchema.safeParse(rest);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      const where = first?.path.join('.') || '(root)';
      // Never echo the input: it holds the API key.
      throw new AppError('CONFIG_INVALID', `invalid inference client option ${where}: ${first?.message}`);
    }
    const { apiKey, ...config } = parsed.data;
    this.config = config;
    this.#authorization = `Bearer ${apiKey}`;
    const url = new URL(this.config.baseUrl);
    this.origin = url.origin;
    this.pathPrefix = url.pathname.replace(/\/+$/, '');
    this.logger = logger?.child({ component: 'inference-client' });
    this.onRateLimitInfo = onRateLimitInfo;
    this.onResponse = onResponse;
    this.pool = new Pool(this.origin, {
      connections: this.config.connections,
      connect: { timeout: this.config.connectTimeoutMs },
      headersTimeout: this.config.requestTimeoutMs,
      bodyTimeout: this.config.requestTimeoutMs,
      // Keep sockets warm between polls; the provider's keep-alive hint may shorten this.
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 120_000,
      maxResponseSize: this.config.maxResponseBytes,
    });
  }

  /**
   * From now on every request waits its turn in the shared quotas (task reads, uploads) first:
   * set once the process has its Redis (the client is made before it).
   */
  useAdmission(admission: RequestAdmission | undefined): void {
    this.admission = admission;
  }

  /** The rate-limit headers of the latest answer that carried them. */
  get lastRateLimit(): RateLimitInfo | undefined {
    return this.latestRateLimit;
  }

  /**
   * Submit a task: `POST /apps/run`, no wait, no stream (the SDK sends neither; the provider then
   * answers at once with the slim task). Costs money: do not retry blindly on a timeout.
   */
  async run(params: RunParams): Promise<TaskResult> {
    const body = {
      app: this.config.app,
      input: params.input,
      ...(params.webhook === undefined ? {} : { webhook: params.webhook }),
      ...(params.metadata === undefined ? {} : { metadata: params.metadata }),
    };
    const ctx = { method: 'POST', path: '/apps/run' } as const;
    const answer = await this.call(ctx, body, { endpoint: 'run' });
    return toTaskResult(this.validate(TaskResultWireSchema, answer, ctx), this.config.statusNumbering);
  }

  async getTask(id: string): Promise<Task> {
    const ctx = { method: 'GET', path: `/tasks/${taskPath(id)}` } as const;
    const answer = await this.call(ctx, undefined, { endpoint: 'get_task' });
    return toTask(this.validate(TaskWireSchema, answer, ctx), this.config.statusNumbering);
  }

  /** The light poll: cheap enough to run often; confirm a terminal state with `getTask`. */
  async getStatus(id: string): Promise<TaskStatusInfo> {
    const ctx = { method: 'GET', path: `/tasks/${taskPath(id)}/status` } as const;
    const answer = await this.call(ctx, undefined, { endpoint: 'get_status' });
    return toTaskStatusInfo(this.validate(TaskStatusWireSchema, answer, ctx), this.config.statusNumbering);
  }

  /** Ask the provider to cancel. The answer's body (often a 204) is ignored, as the SDKs do. */
  async cancel(id: string): Promise<void> {
    await this.call({ method: 'POST', path: `/tasks/${taskPath(id)}/cancel` }, undefined, {
      endpoint: 'cancel',
      ignoreBody: true,
    });
  }

  /** One page of our tasks, newest first as the provider orders them (used to adopt orphans). */
  async list(params: ListParams = {}): Promise<TaskList> {
    const limit = params.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new AppError('VALIDATION_FAILED', `invalid list limit: ${limit}`, { statusCode: 400 });
    }
    // The SDK's CursorListRequest, with the fields it types as required set to their empty values;
    // `direction` is left out: its values are not documented and the server defaults it.
    const body = {
      cursor: params.cursor ?? '',
      limit,
      filters: params.filters ?? [],
      preloads: [],
      sort: [],
      fields: [],
      permissions: [],
      include_others: false,
    };
    const ctx = { method: 'POST', path: '/tasks/list' } as const;
    const answer = await this.call(ctx, body, { endpoint: 'list' });
    return toTaskList(this.validate(TaskListWireSchema, answer, ctx), this.config.statusNumbering);
  }

  /**
   * Create a file record (`POST /files`, the `upload` rate group): the answer holds the `uri` a
   * task input may name and a presigned `upload_url` for the bytes (PUT without our bearer token).
   */
  async createFile(file: FileRecordRequest): Promise<FileRecordWire> {
    const body = {
      files: [{ uri: '', filename: file.filename, content_type: file.contentType, size: file.size }],
    };
    const ctx = { method: 'POST', path: '/files' } as const;
    const answer = await this.call(ctx, body, { endpoint: 'create_file' });
    const [record] = this.validate(FileRecordsWireSchema, answer, ctx);
    return record!;
  }

  /** Wait for calls in flight, then release the sockets. */
  async close(): Promise<void> {
    await this.pool.close();
  }

  private validate<S extends z.ZodType>(schema: S, answer: Answer, ctx: RequestContext): z.output<S> {
    const result = schema.safeParse(answer.data);
    if (result.success) return result.data;
    const issue = result.error.issues[0];
    const where = issue?.path.map(String).join('.') || '(root)';
    const detail = `unexpected answer at ${where}: ${issue?.message ?? 'invalid'}`;
    this.logger?.warn({ ...ctx, status: answer.status, detail }, 'inference answer failed validation');
    throw badResponse(detail, answer.status, ctx, result.error);
  }

  /** One request in its quota's turn (when it counts against one), then the exchange. */
  private async call(
    ctx: RequestContext,
    body: unknown,
    options: { endpoint: InferenceEndpoint; ignoreBody?: boolean },
  ): Promise<Answer> {
    const turn = this.admission ? await this.admission(options.endpoint) : undefined;
    if (!turn) return this.exchange(ctx, body, options);
    let rateLimited: { retryAfterMs?: number | undefined } | undefined;
    try {
      return await this.exchange(ctx, body, options);
    } catch (err) {
      if (err instanceof InferenceError && err.httpStatus === 429)
        rateLimited = { retryAfterMs: err.retryAfterMs };
      throw err;
    } finally {
      await turn.end(rateLimited).catch((err: unknown) => {
        // The quota's bookkeeping must never turn an answer into a failed call.
        this.logger?.warn(
          { err: (err as Error).message, endpoint: options.endpoint },
          'quota turn not ended',
        );
      });
    }
  }

  /** One HTTP exchange: send, read the whole body, map failures, unwrap the envelope. */
  private async exchange(
    ctx: RequestContext,
    body: unknown,
    options: { endpoint: InferenceEndpoint; ignoreBody?: boolean },
  ): Promise<Answer> {
    const { method, path } = ctx;
    const started = Date.now();
    const controller = new AbortController();
    let timedOut = false;
    // headersTimeout/bodyTimeout are idle timers; this is the hard deadline for the whole exchange.
    const deadline = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.config.requestTimeoutMs);
    let status: number;
    let headers: Record<string, string | string[] | undefined>;
    let text: string;
    try {
      const response = await this.pool.request({
        method,
        path: `${this.pathPrefix}${path}`,
        headers: {
          authorization: this.#authorization,
          accept: 'application/json',
          'user-agent': this.config.userAgent,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: controller.signal,
      });
      status = response.statusCode;
      headers = response.headers;
      text = await response.body.text();
    } catch (err) {
      const error = errorFromTransport(err, ctx, timedOut);
      this.observe(options.endpoint, timedOut ? 'timeout' : 'network', started);
      this.logger?.debug(
        { method, path, err: error.message, ms: Date.now() - started },
        'inference call failed',
      );
      throw error;
    } finally {
      clearTimeout(deadline);
    }

    this.observe(options.endpoint, status, started);
    this.noteRateLimit(headers, status);
    this.logger?.debug({ method, path, status, ms: Date.now() - started }, 'inference call');
    if (status < 200 || status >= 300) {
      throw errorFromResponse(status, headers, text, ctx, this.config.maxRetryAfterMs);
    }
    if (options.ignoreBody) return { data: undefined, status };
    if (text.trim() === '') throw badResponse('empty answer', status, ctx);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      this.logger?.warn({ method, path, status, body: text.slice(0, 200) }, 'inference answer is not JSON');
      throw badResponse('answer is not JSON', status, ctx, err);
    }
    const unwrapped = unwrapEnvelope(json);
    if (!unwrapped.ok) throw errorFromEnvelope(unwrapped.envelope, status, ctx);
    return { data: unwrapped.data, status };
  }

  private observe(endpoint: InferenceEndpoint, status: ProviderResponse['status'], started: number): void {
    try {
      this.onResponse?.({ endpoint, status, ms: Date.now() - started });
    } catch (err) {
      // Metrics must never turn an answer into a failed call.
      this.logger?.warn({ err }, 'onResponse threw');
    }
  }

  private noteRateLimit(headers: Record<string, string | string[] | undefined>, status: number): void {
    const info = readRateLimit(headers, status);
    if (!info) return;
    this.latestRateLimit = info;
    try {
      this.onRateLimitInfo?.(info);
    } catch (err) {
      // A faulty observer must not turn a good answer into a failed call.
      this.logger?.warn({ err }, 'onRateLimitInfo threw');
    }
  }
}

/** A task id, checked and escaped for a path segment (ids come from webhooks, i.e. from outside). */
function taskPath(id: string): string {
  const parsed = TaskIdSchema.safeParse(id);
  if (!parsed.success) {
    throw new AppError('VALIDATION_FAILED', 'task id must be a non-empty string', { statusCode: 400 });
  }
  return encodeURIComponent(parsed.data);
}

export function createInferenceClient(options: InferenceClientOptions): InferenceClient {
  return new InferenceClient(options);
}
