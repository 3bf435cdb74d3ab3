import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/*
 * Test support (not exported from the package): a real HTTP server on 127.0.0.1 that answers canned
 * responses and records what it received, so client tests exercise undici end to end without mocks.
 */

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The body parsed as JSON, or undefined when it is empty or not JSON. */
  json: unknown;
}

export interface CannedResponse {
  status?: number;
  headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  /** Never answer (the socket stays open until the server closes). */
  hang?: boolean;
  /** Send the status line and headers, then stall the body forever. */
  stallBody?: boolean;
  /** Answer this much later (a slow provider). */
  delayMs?: number;
}

export type CannedHandler = (request: RecordedRequest) => CannedResponse;

export interface CannedServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  requests: RecordedRequest[];
  /** Replace the handler (tests that change answers between calls). */
  respond(handler: CannedHandler): void;
  close(): Promise<void>;
}

function parseJson(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, canned: CannedResponse): void {
  if (canned.hang) return;
  const isText = typeof canned.body === 'string';
  const payload = canned.body === undefined ? '' : isText ? String(canned.body) : JSON.stringify(canned.body);
  const headers: Record<string, string> = {
    ...(canned.body === undefined ? {} : { 'content-type': isText ? 'text/plain' : 'application/json' }),
    ...canned.headers,
  };
  if (canned.stallBody) {
    res.writeHead(canned.status ?? 200, { ...headers, 'content-length': String(payload.length + 100) });
    res.write(payload.slice(0, 1));
    return;
  }
  res.writeHead(canned.status ?? 200, headers);
  res.end(payload);
}

export async function startCannedServer(handler: CannedHandler): Promise<CannedServer> {
  let current = handler;
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        json: parseJson(body),
      };
      requests.push(recorded);
      const canned = current(recorded);
      if (canned.delayMs) setTimeout(() => send(res, canned), canned.delayMs);
      else send(res, canned);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    respond(next) {
      current = next;
    },
    close() {
      // Hanging tests leave sockets open: cut them, or close() would wait for them forever.
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

/** A port that refuses connections: bind one, then let it go. */
export async function refusedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
