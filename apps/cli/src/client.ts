import { createRecastClient, type FetchLike, type RecastClient } from '@recast/client';
import { Agent } from 'undici';
import { UsageError } from './exit-codes.js';

export interface ClientOptions {
  /** Base URL of the API, optionally with a path prefix (`https://host/recast`). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …`; never printed. */
  apiKey?: string;
  /** Sent as `X-Tenant`: only an admin key may act for another tenant. */
  tenant?: string;
  connectTimeoutMs?: number;
  /** Deadline for the answer's headers of ordinary calls (uploads get `longFetch`). */
  headersTimeoutMs?: number;
  /** Aborts every request in flight (Ctrl-C). */
  signal?: AbortSignal;
}

/** How long validating (and probing) a large manifest or file may take before the API answers. */
const UPLOAD_ANSWER_TIMEOUT_MS = 15 * 60_000;
const USER_AGENT = 'recast-cli/0.1.0';

/** The typed client the CLI talks through, with the timeouts of a terminal tool. */
export interface CliClient {
  api: RecastClient;
  /** A fetch for the calls whose answer may take minutes (a manifest's or a file's upload). */
  longFetch: FetchLike;
  baseUrl: string;
  close(): Promise<void>;
}

/**
 * `@recast/client` over undici Agents with explicit timeouts: a short one for ordinary calls, a
 * long one for uploads (the API answers when it has read, validated and probed the whole body).
 */
export function createCliClient(options: ClientOptions): CliClient {
  let url: URL;
  try {
    url = new URL(options.baseUrl);
  } catch {
    throw new UsageError(`--url / RECAST_URL is not a URL: ${options.baseUrl}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--url / RECAST_URL must be http(s): ${options.baseUrl}`);
  }
  const baseUrl = `${url.origin}${url.pathname.replace(/\/$/, '')}`;
  const connect = { timeout: options.connectTimeoutMs ?? 5_000 };
  const agent = new Agent({
    connections: 4,
    connect,
    headersTimeout: options.headersTimeoutMs ?? 30_000,
    bodyTimeout: 300_000,
  });
  const uploads = new Agent({
    connections: 2,
    connect,
    headersTimeout: UPLOAD_ANSWER_TIMEOUT_MS,
    bodyTimeout: 300_000,
  });
  const through =
    (dispatcher: Agent): FetchLike =>
    (request, init) =>
      fetch(request, { ...init, dispatcher } as unknown as RequestInit);
  const api = createRecastClient({
    baseUrl,
    userAgent: USER_AGENT,
    fetch: through(agent),
    ...(options.apiKey ? { apiKey: options.apiKey } : {}),
    ...(options.tenant ? { tenant: options.tenant } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return {
    api,
    longFetch: through(uploads),
    baseUrl,
    async close() {
      await Promise.all([agent.close(), uploads.close()]);
    },
  };
}
