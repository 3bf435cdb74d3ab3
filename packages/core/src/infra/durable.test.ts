import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAppError } from '../errors/app-error.js';
import { testLogger } from '../testing/index.js';
import { SentinelGroup } from '../testing/sentinel-group.js';
import { Durability } from './durable.js';
import { createRedis, waitForRedis } from './redis.js';

/** A primary and a replica (and their sentinels, unused here): WAIT needs a real replica. */
let group: SentinelGroup;
beforeAll(async () => {
  group = await SentinelGroup.start();
}, 60_000);
afterAll(() => group?.stop());

function notReplicated(err: unknown): boolean {
  return isAppError(err) && err.code === 'REDIS_NOT_REPLICATED' && err.statusCode === 503 && err.retryable;
}

describe('Durability', () => {
  it('answers a write once the replica holds it, and the replica does hold it', async () => {
    const primary = (await group.primary())!;
    const redis = createRedis({ target: primary.url, role: 'producer', logger: testLogger() });
    await waitForRedis(redis);
    const durability = new Durability({ replicas: 1, timeoutMs: 2_000 });
    const writes = await Promise.all(
      Array.from({ length: 50 }, (_, i) => durability.run(redis, () => redis.set(`durable:${i}`, String(i)))),
    );
    expect(writes.every((w) => w === 'OK')).toBe(true);
    const replica = group.other(primary).client();
    expect(await replica.get('durable:49')).toBe('49');
    replica.disconnect();
    await redis.quit();
  });

  it('refuses (retryable) when the replica does not acknowledge, and never runs the write twice', async () => {
    const primary = (await group.primary())!;
    const replica = group.other(primary);
    const redis = createRedis({ target: primary.url, role: 'producer', logger: testLogger() });
    await waitForRedis(redis);
    const durability = new Durability({ replicas: 1, timeoutMs: 300 });
    replica.pause();
    try {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) => durability.run(redis, () => redis.incr(`durable:paused:${i}`))),
      );
      expect(outcomes.every((o) => o.status === 'rejected' && notReplicated(o.reason))).toBe(true);
      // The writes happened on the primary once each: a refusal is "not confirmed", not "undone".
      expect(await redis.get('durable:paused:0')).toBe('1');
    } finally {
      replica.resume();
    }
    await group.waitInSync(replica, 20_000);
    await expect(durability.run(redis, () => redis.incr('durable:paused:0'))).resolves.toBe(2);
    await redis.quit();
  });

  it('refuses when more replicas are wanted than exist, and does not wait with 0', async () => {
    const primary = (await group.primary())!;
    const redis = createRedis({ target: primary.url, role: 'producer', logger: testLogger() });
    await waitForRedis(redis);
    await expect(
      new Durability({ replicas: 2, timeoutMs: 200 }).run(redis, () => redis.set('durable:two', '1')),
    ).rejects.toSatisfy(notReplicated);
    const none = new Durability({ replicas: 0, timeoutMs: 1 });
    expect(none.enabled).toBe(false);
    await expect(none.run(redis, () => redis.set('durable:none', '1'))).resolves.toBe('OK');
    await redis.quit();
  });
});
