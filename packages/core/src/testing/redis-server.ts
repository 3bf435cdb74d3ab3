import { existsSync } from 'node:fs';
import { startPrivateRedis } from './private-redis.js';

export interface TestRedis {
  url: string;
  /** How this Redis was obtained, for the test log. */
  source: 'env' | 'testcontainers' | 'redis-server';
  stop(): Promise<void>;
}

function dockerLikelyAvailable(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');
}

/**
 * A real Redis for a test run: `REDIS_URL` when set, testcontainers when a Docker engine answers,
 * otherwise a private `redis-server`. Never a mock.
 */
export async function startTestRedis(
  env: Record<string, string | undefined> = process.env,
): Promise<TestRedis> {
  if (env.REDIS_URL) {
    return { url: env.REDIS_URL, source: 'env', stop: async () => {} };
  }
  if (dockerLikelyAvailable()) {
    try {
      const { RedisContainer } = await import('@testcontainers/redis');
      const container = await new RedisContainer('redis:7-alpine')
        .withCommand(['redis-server', '--appendonly', 'yes', '--maxmemory-policy', 'noeviction'])
        .start();
      return {
        url: container.getConnectionUrl(),
        source: 'testcontainers',
        stop: async () => void (await container.stop()),
      };
    } catch {
      // No engine behind the socket: fall through to a local redis-server.
    }
  }
  const server = await startPrivateRedis();
  return { url: server.url, source: 'redis-server', stop: () => server.stop() };
}
