import type { TestProject } from 'vitest/node';
import { startTestRedis } from './redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

/** Vitest global setup: one real Redis for the run, handed to every test file via `inject`. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redis = await startTestRedis();
  project.provide('redisUrl', redis.url);
  process.stderr.write(
    `[test harness] Redis from ${redis.source} at ${redis.url.replace(/\/\/.*@/, '//***@')}\n`,
  );
  return () => redis.stop();
}
