import type { Registry } from '@recast/core/metrics';
import type { LookupFn } from '@recast/core/net';
import { sharedTestDatabaseUrl, testLogger, testRedisUrl, uniquePrefix } from '@recast/core/testing';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../app.js';
import { loadConfig } from '../config.js';

export const TEST_WEBHOOK_SECRET = 'test-webhook-secret-0123456789';
/** The bootstrap admin key of test apps. */
export const TEST_ADMIN_KEY = 'rk_test_admin_key_0123456789';

/**
 * The real app on the run's Redis, under a key prefix of its own, and on a real PostgreSQL. API keys are on (the bootstrap
 * admin key is TEST_ADMIN_KEY); tests about something else may pass AUTH_DISABLED=true.
 */
export async function buildTestApp(
  env: Record<string, string> = {},
  options: { registry?: Registry } = {},
): Promise<FastifyInstance> {
  const config = loadConfig({
    REDIS_URL: testRedisUrl(),
    DATABASE_URL: await sharedTestDatabaseUrl(),
    REDIS_PREFIX: uniquePrefix('api'),
    WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
    ADMIN_API_KEY: TEST_ADMIN_KEY,
    ...env,
  });
  const app = await buildApp({ config, logger: testLogger(), lookup: testLookup, ...options });
  await app.ready();
  return app;
}

/**
 * The test apps' resolver, so no test depends on the machine's DNS: `*.example.com` is a public
 * address (nothing is fetched from it: jobs give a duration hint), `*.intranet.example.org` a
 * private one, and every other name does not exist.
 */
export const testLookup: LookupFn = async (hostname) => {
  const name = hostname.toLowerCase();
  if (name === 'example.com' || name.endsWith('.example.com'))
    return [{ address: '93.184.215.14', family: 4 }];
  if (name.endsWith('.intranet.example.org')) return [{ address: '10.20.30.40', family: 4 }];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
};

/** A valid job with a duration hint, so submitting it needs no network (nothing to probe). */
export const validJob = {
  video: 'https://cdn.example.com/source.mp4',
  images: ['https://cdn.example.com/person-a.png'],
  duration_seconds: 4,
};
