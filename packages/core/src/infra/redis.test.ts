import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startPrivateRedis } from '../testing/private-redis.js';
import { SentinelGroup } from '../testing/sentinel-group.js';
import { createLogger } from './logger.js';
import {
  checkEvictionPolicy,
  createRedis,
  describeRedisTarget,
  redisOptionsOf,
  redisTargetOf,
  waitForRedis,
} from './redis.js';

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

describe('Redis through Sentinel', () => {
  it('reads REDIS_SENTINELS into a target; REDIS_URL alone stays one endpoint', () => {
    expect(
      redisTargetOf({ REDIS_URL: 'redis://h:1', REDIS_SENTINELS: [], REDIS_SENTINEL_NAME: 'recast' }),
    ).toEqual({ url: 'redis://h:1' });
    const target = redisTargetOf({
      REDIS_URL: 'rediss://app:s3cret@ignored:6379/2',
      REDIS_SENTINELS: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26380 },
      ],
      REDIS_SENTINEL_NAME: 'main',
      REDIS_SENTINEL_PASSWORD: 'sentinel-pass',
    });
    const options = redisOptionsOf(target);
    expect(options).toMatchObject({
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26380 },
      ],
      name: 'main',
      role: 'master',
      username: 'app',
      password: 's3cret',
      sentinelPassword: 'sentinel-pass',
      db: 2,
      enableTLSForSentinelMode: true,
    });
    // Logs name the sentinels, never a password.
    expect(describeRedisTarget(target)).toBe('sentinel main via s1:26379,s2:26380');
    expect(describeRedisTarget('redis://u:pw@h:1/0')).toBe('redis://h:1');
  });

  it('follows a failover by itself: a worker command waits for the promoted replica, a producer fails fast then reconnects', async () => {
    const group = await SentinelGroup.start();
    try {
      const { logger } = capturingLogger();
      const worker = createRedis({ target: group.target(), role: 'worker', logger, name: 'failover-worker' });
      const producer = createRedis({
        target: group.target(),
        role: 'producer',
        logger,
        name: 'failover-api',
      });
      await Promise.all([waitForRedis(worker), waitForRedis(producer)]);
      const old = (await group.primary())!;
      await worker.set('before', '1');
      await worker.wait(1, 5_000);

      await old.stop('SIGKILL');
      // Issued while there is no primary: a worker's command is held and sent to the new one.
      const during = worker.incr('during');
      const promoted = await group.promoted(old);
      expect(await during).toBe(1);
      expect(promoted).not.toBe(old);
      expect(await worker.get('before')).toBe('1');
      // The producer refuses while it has no connection, and is back by itself, on the new primary.
      for (let i = 0; ; i++) {
        const answered = await producer.incr('producer').then(
          () => true,
          () => false,
        );
        if (answered) break;
        if (i > 600) throw new Error('the producer did not reconnect');
        await new Promise((r) => setTimeout(r, 100));
      }
      const direct = promoted.client();
      expect(await direct.get('during')).toBe('1');
      expect(await direct.get('producer')).toBe('1');
      direct.disconnect();
      worker.disconnect();
      producer.disconnect();
    } finally {
      await group.stop();
    }
  }, 90_000);
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
