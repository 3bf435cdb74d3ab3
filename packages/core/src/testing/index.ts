import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { createLogger, type Logger } from '../infra/logger.js';
import { newJobId } from '../model/ids.js';
import type { JobRecord } from '../model/record.js';
import { ReplaceInputSchema } from '../model/schema.js';
import { createTestDatabase } from './postgres.js';

export { createTestDatabase, databaseUrlFor } from './postgres.js';
export * from './redis-server.js';
export * from './servers.js';

/**
 * A fresh, migrated PostgreSQL database for one test (copied from the run's template): its URL,
 * and how to drop it (the run drops every copy at its end anyway).
 */
export function testDatabase(): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  return createTestDatabase(inject('postgresAdminUrl'), inject('postgresTemplate'));
}

let shared: Promise<string> | undefined;

/**
 * One migrated database for every test of this test process that only needs the history to be
 * there (an API under test with no archiver writes nothing to it); a test that reads or writes the
 * history takes a database of its own with testDatabase().
 */
export function sharedTestDatabaseUrl(): Promise<string> {
  shared ??= testDatabase().then((db) => db.url);
  return shared;
}

/** The Redis URL of this test run (see global-setup.ts). */
export function testRedisUrl(): string {
  return inject('redisUrl');
}

/** A key prefix no other test uses, so tests never see each other's keys or queues. */
export function uniquePrefix(label = 't'): string {
  return `test-${label}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** A plain client on the test Redis; the caller quits it. */
export function testRedisClient(): Redis {
  const client = new Redis(testRedisUrl(), { maxRetriesPerRequest: null });
  client.on('error', () => {});
  return client;
}

/** A quiet logger for tests; set LOG_LEVEL=debug to see what the code under test says. */
export function testLogger(): Logger {
  return createLogger({ level: process.env.LOG_LEVEL ?? 'silent', name: 'test' });
}

/** Poll until `check` returns a truthy value or the timeout passes. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let last: T | undefined;
  for (;;) {
    last = await check();
    if (last) return last as NonNullable<T>;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${options.what ?? 'condition'} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
}

/** A queued job record with a valid minimal input, for store- and queue-level tests. */
export function queuedJobRecord(overrides: Partial<JobRecord> = {}): JobRecord {
  const now = new Date().toISOString();
  return {
    id: newJobId(),
    tenant: 'default',
    state: 'queued',
    version: 1,
    created_at: now,
    updated_at: now,
    input: ReplaceInputSchema.parse({
      video: 'https://example.com/a.mp4',
      images: ['https://example.com/p.png'],
    }),
    attempt: 0,
    ...overrides,
  };
}
export * from '../metrics/scrape.js';
export * from './test-receiver.js';
