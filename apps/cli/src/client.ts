import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import type { z } from 'zod';
import { ApiError, UnexpectedResponseError, UnreachableError, UsageError } from './exit-codes.js';
import { ErrorBodySchema } from './schemas.js';

export interface ClientOptions {
  /** Base URL of the API, optionally with a path prefix (`https://host/recast`). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …`; never printed. */
  apiKey?: string;
  /** Sent as `X-Tenant` until API keys name the tenant. */
  tenant?: string;
  connectTimeoutMs?: number;
  /** Deadline for the answer's headers of ordinary calls (an upload gets its own). */
  headersTimeoutMs?: number;
  /** Aborts every request in flight (Ctrl-C). */
  signal?: AbortSignal;
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'DELETE';
  query?: Record<string, string | undefined>;
  headers?: Record<string, string>;
  body?: Readable;
  headersTimeoutMs?: number;
}

const USER_AGENT = 'recast-cli/0.1.0';

/**
 * The public HTTP API over one undici Pool. Transport failures become `UnreachableError`, non-2xx
 * answers `ApiError` (with the API's `{error: {code, message, issues, details}}` when present),
 * and JSON answers are checked against a zod schema.
 */
export class RecastClient {
  readonly baseUrl: string;
  private readonly pool: Pool;
  private readonly prefix: string;

  constructor(private readonly options: ClientOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new UsageError(`--url / RECAST_URL is not a URL: ${options.baseUrl}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UsageError(`--url / RECAST_URL must be http(s): ${options.baseUrl}`);
    }
    this.baseUrl = `${url.origin}${url.pathname.replace(/\/$/, '')}`;
    this.prefix = url.pathname.replace(/\/$/, '');
    this.pool = new Pool(url.origin, {
      connections: 4,
      connect: { timeout: options.connectTimeoutMs ?? 5_000 },
      headersTimeout: options.headersTimeoutMs ?? 30_000,
      bodyTimeout: 300_000,
    });
  }

  async json<S extends z.ZodType>(
    schema: S,
    path: string,
    options: RequestOptions = {},
  ): Promise<z.infer<S>> {
    const body = await this.send(path, {
      ...options,
      headers: { accept: 'application/json', ...options.headers },
    });
    const text = await readText(body);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new UnexpectedResponseError(`${path} answered non-JSON: ${text.slice(0, 200)}`);
    }
    const result = schema.safeParse(parsed);
    if (!result.success) {
      const first = result.error.issues[0];
      throw new UnexpectedResponseError(
        `${path} answered an unexpected shape (${first?.path.join('.') || '(root)'}: ${first?.message})`,
      );
    }
    return result.data;
  }

  /** A successful answer's body as a stream (results); errors are thrown before any byte is read. */
  async stream(path: string, options: RequestOptions = {}): Promise<Readable> {
    return this.send(path, options);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  private async send(path: string, options: RequestOptions): Promise<Readable> {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) search.set(k, v);
    const qs = search.size > 0 ? `?${search}` : '';
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...options.headers };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    if (this.options.tenant) headers['x-tenant'] = this.options.tenant;
    let res: Awaited<ReturnType<Pool['request']>>;
    try {
      res = await this.pool.request({
        path: `${this.prefix}${path}${qs}`,
        method: options.method ?? 'GET',
        headers,
        body: options.body ?? null,
        ...(this.options.signal ? { signal: this.options.signal } : {}),
        ...(options.headersTimeoutMs !== undefined ? { headersTimeout: options.headersTimeoutMs } : {}),
      });
    } catch (err) {
      throw new UnreachableError(`cannot reach Recast at ${this.baseUrl}: ${describe(err)}`, { cause: err });
    }
    if (res.statusCode < 400) return res.body;
    throw await apiError(res.statusCode, await readText(res.body).catch(() => ''));
  }
}

async function readText(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of body) chunks.push(chunk as Buffer);
  } catch (err) {
    throw new UnreachableError(`the answer was cut off: ${describe(err)}`, { cause: err });
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function apiError(status: number, text: string): Promise<ApiError> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const body = ErrorBodySchema.safeParse(parsed);
  if (!body.success)
    return new ApiError(status, `HTTP_${status}`, text.trim().slice(0, 200) || `HTTP ${status}`);
  const { code, message, issues, details } = body.data.error;
  return new ApiError(status, code, message, issues ?? [], details ?? {});
}

function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describe(err.errors[0]);
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
