import type { TestProject } from 'vitest/node';
import { startTestPostgres } from './postgres.js';
import { startTestRedis } from './redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    /** A PostgreSQL server URL with rights to create databases, and the run's migrated template. */
    postgresAdminUrl: string;
    postgresTemplate: string;
  }
}

/**
 * Vitest global setup: one real Redis and one real PostgreSQL for the run, handed to every test
 * file via `inject` (each test takes its own key prefix, and its own database: testDatabase()).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [redis, postgres] = await Promise.all([startTestRedis(), startTestPostgres()]);
  project.provide('redisUrl', redis.url);
  project.provide('postgresAdminUrl', postgres.adminUrl);
  project.provide('postgresTemplate', postgres.template);
  const hide = (url: string) => url.replace(/\/\/.*@/, '//***@');
  process.stderr.write(
    `[test harness] Redis from ${redis.source} at ${hide(redis.url)}; PostgreSQL from ${postgres.source} at ${hide(postgres.adminUrl)}\n`,
  );
  return async () => {
    await postgres.stop();
    await redis.stop();
  };
}
