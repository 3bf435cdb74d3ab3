import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request the test receiver got. */
export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One scripted answer: a status, or a status sent only after a delay (to provoke timeouts). */
export type Answer = number | { status: number; delayMs: number };

export interface TestReceiver {
  /** `127.0.0.1:<port>`, as an SSRF allow-list entry. */
  host: string;
  url(path: string): string;
  received(path: string): Received[];
  /** Answer the next requests to `path` in this order; 200 once the script runs out. */
  script(path: string, ...answers: Answer[]): void;
  close(): Promise<void>;
}

/** A real HTTP receiver on 127.0.0.1 for callback tests (exported from @recast/core/testing). */
export async function startTestReceiver(): Promise<TestReceiver> {
  const received: Received[] = [];
  const scripts = new Map<string, Answer[]>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const answer = scripts.get(path)?.shift() ?? 200;
      const { status, delayMs } = typeof answer === 'number' ? { status: answer, delayMs: 0 } : answer;
      const headers = status >= 300 && status < 400 ? { location: '/elsewhere' } : {};
      const timer = setTimeout(() => res.writeHead(status, headers).end('{"ok":true}'), delayMs);
      res.on('close', () => clearTimeout(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    received: (path) => received.filter((entry) => entry.path === path),
    script: (path, ...answers) => void scripts.set(path, answers),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
