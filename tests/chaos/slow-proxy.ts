import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlowProxyOptions {
  /** The upstream (the emulator), e.g. http://127.0.0.1:4010. */
  target: string;
  /**
   * Hold the answer of an accepted `POST /apps/run` this long (ms, uniform in [min, max]) after the
   * provider has created the task. A worker killed meanwhile leaves a task at the provider whose id
   * it never recorded: the "crash in the middle of a submit" of invariant 3.
   */
  submitAnswerDelayMs: { min: number; max: number };
}

export interface SlowProxy {
  url: string;
  /** Accepted submits whose answer never reached the worker (its connection died first). */
  interruptedSubmits(): number;
  /** Accepted submits whose answer was delivered. */
  deliveredSubmits(): number;
  close(): Promise<void>;
}

/**
 * A forwarding proxy between the workers and the provider that slows only the way back of a
 * submit. The emulator's own `latencyMs` is added before a request is handled, so it cannot leave
 * a task behind a dead worker; network latency on the answer can, and that is what this adds.
 */
export async function startSlowProxy(options: SlowProxyOptions): Promise<SlowProxy> {
  const target = new URL(options.target);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  let interrupted = 0;
  let delivered = 0;
  const { min, max } = options.submitAnswerDelayMs;

  const server: Server = createServer((req, res) => {
    const isSubmit = req.method === 'POST' && (req.url ?? '').split('?')[0] === '/apps/run';
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
        agent,
      },
      (answer: IncomingMessage) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const body = Buffer.concat(chunks);
          const accepted = isSubmit && (answer.statusCode ?? 500) < 300;
          const send = () => {
            if (res.destroyed || req.socket.destroyed) {
              if (accepted) interrupted++;
              return;
            }
            const headers = { ...answer.headers };
            delete headers['transfer-encoding'];
            headers['content-length'] = String(body.length);
            res.writeHead(answer.statusCode ?? 502, headers);
            res.end(body);
            if (accepted) {
              res.once('finish', () => delivered++);
              res.once('close', () => {
                if (!res.writableFinished) interrupted++;
              });
            }
          };
          if (accepted) setTimeout(send, min + Math.random() * (max - min));
          else send();
        });
        answer.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end('{"error":"proxy: upstream unreachable"}');
    });
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    interruptedSubmits: () => interrupted,
    deliveredSubmits: () => delivered,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
