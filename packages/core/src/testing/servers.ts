/**
 * Servers for local runs and tests, without the test runner: a private redis-server (pnpm start,
 * benchmarks, the chaos harness), a primary + replica + three sentinels (failover tests), canned
 * provider answers and a media fixture server.
 */
export * from './canned-server.js';
export * from './fixture-server.js';
export * from './private-postgres.js';
export * from './private-redis.js';
export * from './sentinel-group.js';
