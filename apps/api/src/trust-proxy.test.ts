import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildTestApp, TEST_ADMIN_KEY } from './test/build-test-app.js';

// Clients on distinct loopback addresses (127.0.0.2, .3, .4: all of 127/8 is the loopback), a
// real proxy hop on 127.0.0.1 in front of the API that appends the client's address to
// X-Forwarded-For as load balancers do, and the API's per-address limit of 401s.

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of cleanup.splice(0).reverse()) await close();
});

async function startApi(env: Record<string, string>): Promise<{ app: FastifyInstance; port: number }> {
  const app = await buildTestApp({ AUTH_FAILURES_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000', ...env });
  cleanup.push(() => app.close());
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, port: Number(new URL(url).port) };
}

/** A forwarding proxy on 127.0.0.1: X-Forwarded-For gets the client's socket address appended. */
async function startProxy(target: number): Promise<number> {
  const proxy: Server = createServer((req, res) => {
    const forwarded = [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', ');
    const upstream = httpRequest(
      {
        host: '127.0.0.1',
        localAddress: '127.0.0.1',
        port: target,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'x-forwarded-for': forwarded },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  cleanup.push(
    () =>
      new Promise((resolve) => {
        proxy.closeAllConnections();
        proxy.close(resolve);
      }),
  );
  return (proxy.address() as AddressInfo).port;
}

/** GET /v1/stats from `from`, to `port`, with a key (good or bad) and extra headers: the status. */
function get(port: number, from: string, key: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        localAddress: from,
        path: '/v1/stats',
        headers: { authorization: `Bearer ${key}`, connection: 'close', ...headers },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const BAD_KEY = 'rk_not_a_key_0123456789abcdef';

async function flood(
  port: number,
  from: string,
  headers: (n: number) => Record<string, string> = () => ({}),
) {
  const statuses: number[] = [];
  for (let n = 0; n < 5; n++) statuses.push(await get(port, from, BAD_KEY, headers(n)));
  return statuses;
}

describe('TRUST_PROXY', () => {
  it('false (the default): behind a proxy every client is the proxy, so one stale key locks out all', async () => {
    const { port } = await startApi({});
    const proxy = await startProxy(port);
    expect(await flood(proxy, '127.0.0.2')).toEqual([401, 401, 401, 429, 429]);
    // Another client, with a good key, from another address: refused with the proxy's address.
    expect(await get(proxy, '127.0.0.3', TEST_ADMIN_KEY)).toBe(429);
  });

  it("the proxy's address: clients behind it are limited apart, by their own address", async () => {
    const { port } = await startApi({ TRUST_PROXY: '127.0.0.1' });
    const proxy = await startProxy(port);
    expect(await flood(proxy, '127.0.0.2')).toEqual([401, 401, 401, 429, 429]);
    expect(await get(proxy, '127.0.0.3', TEST_ADMIN_KEY)).toBe(200);
    expect(await get(proxy, '127.0.0.2', TEST_ADMIN_KEY)).toBe(429);
  });

  it("ignores the X-Forwarded-For of an untrusted hop: a client cannot claim another's address", async () => {
    const { port } = await startApi({ TRUST_PROXY: '127.0.0.1' });
    const proxy = await startProxy(port);
    // Through the trusted proxy, each bad request claims a new address: still counted by its own.
    expect(await flood(proxy, '127.0.0.2', (n) => ({ 'x-forwarded-for': `203.0.113.${n}` }))).toEqual([
      401, 401, 401, 429, 429,
    ]);
    // Straight to the API (127.0.0.4 is no trusted proxy), claiming to be 127.0.0.3: counted as .4.
    expect(await flood(port, '127.0.0.4', () => ({ 'x-forwarded-for': '127.0.0.3' }))).toEqual([
      401, 401, 401, 429, 429,
    ]);
    expect(await get(proxy, '127.0.0.3', TEST_ADMIN_KEY)).toBe(200);
  });

  it('refuses a value it cannot read, naming the variable', async () => {
    await expect(buildTestApp({ TRUST_PROXY: '10.0.0.0/99' })).rejects.toThrow(
      /TRUST_PROXY: must be false, true, a hop count, or addresses\/CIDRs \(not "10\.0\.0\.0\/99"\)/,
    );
  });
});
