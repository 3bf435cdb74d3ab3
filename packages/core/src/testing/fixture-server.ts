import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Test-only (not exported from the package): a real HTTP server on 127.0.0.1 serving the files
 * in `test-fixtures/` with Range support, the way object stores and CDNs answer, and recording
 * what it sent so tests can tell which bytes a probe read.
 */

const FIXTURES_DIR = new URL('../../test-fixtures/', import.meta.url);

export function fixture(name: string): Promise<Buffer> {
  return readFile(new URL(name, FIXTURES_DIR));
}

export interface FixtureServerOptions {
  /** Answer every GET with 200 and the whole file, as some servers do. */
  ignoreRange?: boolean;
  /** Send at most this many bytes of a range, as some CDNs do. */
  maxRangeBytes?: number;
  /** Hold each answer this long, so that concurrent probes overlap on the server. */
  delayMs?: number;
  /** Extra files (generated variants) served beside the fixtures. */
  files?: Record<string, Buffer>;
}

export interface Served {
  file: string;
  /** Byte range of the file sent, end exclusive. */
  start: number;
  end: number;
}

export interface FixtureServer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** `127.0.0.1:<port>`, for an allow-list. */
  host: string;
  url(file: string): string;
  /** A URL answering 302 to `target`. */
  redirect(target: string): string;
  /** A URL that accepts the connection and never answers. */
  hang: string;
  /** A URL answered with this HTTP status (and no file). */
  status(code: number): string;
  readonly stats: { requests: number; inFlight: number; maxInFlight: number; served: Served[] };
  close(): Promise<void>;
}

export async function startFixtureServer(options: FixtureServerOptions = {}): Promise<FixtureServer> {
  const stats = { requests: 0, inFlight: 0, maxInFlight: 0, served: [] as Served[] };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://fixture');
    if (url.pathname === '/hang') return;
    if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    const status = /^\/status\/(\d{3})$/.exec(url.pathname);
    if (status) {
      res.writeHead(Number(status[1]), { 'content-type': 'text/plain' }).end('as asked');
      return;
    }
    if (url.pathname === '/redirect') {
      res.writeHead(302, { location: url.searchParams.get('to') ?? '/' }).end();
      return;
    }
    const name = decodeURIComponent(url.pathname.replace(/^\/f\//, ''));
    const bytes = options.files?.[name] ?? (await fixture(name).catch(() => undefined));
    if (!url.pathname.startsWith('/f/') || !bytes) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const range = options.ignoreRange ? undefined : parseRange(req.headers.range, bytes.length);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${bytes.length}` }).end();
      return;
    }
    const start = range?.start ?? 0;
    const end = range ? Math.min(range.end, start + (options.maxRangeBytes ?? bytes.length)) : bytes.length;
    stats.served.push({ file: name, start, end });
    res.writeHead(range ? 206 : 200, {
      'content-type': 'video/mp4',
      'content-length': end - start,
      'accept-ranges': options.ignoreRange ? 'none' : 'bytes',
      ...(range ? { 'content-range': `bytes ${start}-${end - 1}/${bytes.length}` } : {}),
    });
    res.end(bytes.subarray(start, end));
  };
  const server = createServer((req, res) => {
    stats.requests++;
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    res.on('close', () => {
      stats.inFlight--;
    });
    handle(req, res).catch((error: unknown) => res.destroy(error as Error));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    host: `127.0.0.1:${port}`,
    url: (file) => `${origin}/f/${encodeURIComponent(file)}`,
    redirect: (target) => `${origin}/redirect?to=${encodeURIComponent(target)}`,
    hang: `${origin}/hang`,
    status: (code) => `${origin}/status/${code}`,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = header ? /^bytes=(\d+)-(\d*)$/.exec(header) : null;
  if (!match) return undefined;
  const start = Number(match[1]);
  if (start >= size) return 'unsatisfiable';
  const last = match[2] ? Math.min(Number(match[2]), size - 1) : size - 1;
  return last < start ? undefined : { start, end: last + 1 };
}
