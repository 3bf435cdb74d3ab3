import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@recast/core/infra';
import { type Registry, renderMetrics } from '@recast/core/metrics';

export interface MetricsServerOptions {
  registry: Registry;
  port: number;
  host: string;
  logger: Logger;
}

export interface MetricsServer {
  /** `http://host:port` it listens on (port 0 picks a free one). */
  url: string;
  close(): Promise<void>;
}

/**
 * `GET /metrics` on its own port. The worker has no HTTP server otherwise, and one route does
 * not need a framework: node:http is enough.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { registry, logger } = options;
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    renderMetrics(registry).then(
      (page) => {
        response.writeHead(200, { 'content-type': page.contentType });
        response.end(request.method === 'HEAD' ? undefined : page.body);
      },
      (err: Error) => {
        logger.error({ err: err.message }, 'rendering metrics failed');
        response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  // A scraper keeps its connection open between scrapes; do not let that hold up a shutdown.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url: `${url}/metrics` }, 'serving metrics');
  return {
    url,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      }),
  };
}
