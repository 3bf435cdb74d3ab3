import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startPrivateRedis } from '../testing/private-redis.js';
import { createLogger } from './logger.js';
import { checkEvictionPolicy, createRedis, waitForRedis } from './redis.js';

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}

const server = await startPrivateRedis({ appendonly: false });
afterAll(() => server.stop());

describe('createRedis', () => {
  it('gives producers a fail-fast connection: a command while Redis is down errors at once', async () => {
    const { logger } = capturingLogger();
    const client = createRedis({ target: `redis://127.0.0.1:${await freePort()}`, role: 'producer', logger });
    const started = Date.now();
    await expect(client.get('x')).rejects.toThrow(/enableOfflineQueue|Stream isn't writeable/);
    expect(Date.now() - started).toBeLessThan(1_000);
    client.disconnect();
  });

  it('gives workers a connection that waits out a reconnect (maxRetriesPerRequest null)', async () => {
    const { logger } = capturingLogger();
    const client = createRedis({ target: server.url, role: 'worker', logger });
    expect(client.options.maxRetriesPerRequest).toBeNull();
    await waitForRedis(client);
    expect(await client.ping()).toBe('PONG');
    await client.quit();
  });
});

describe('checkEvictionPolicy', () => {
  it('is quiet with noeviction and warns loudly with any other policy', async () => {
    const { logger, lines } = capturingLogger();
    const client = createRedis({ target: server.url, role: 'producer', logger });
    await waitForRedis(client);
    expect(await checkEvictionPolicy(client, logger)).toBe('noeviction');
    expect(lines.filter((l) => l.level === 40)).toHaveLength(0);
    await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
    expect(await checkEvictionPolicy(client, logger)).toBe('allkeys-lru');
    const warning = lines.find((l) => l.level === 40);
    expect(String(warning?.msg)).toMatch(/NOT "noeviction"/);
    await client.quit();
  });
});
