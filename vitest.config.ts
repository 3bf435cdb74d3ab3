import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['apps/*/src/**/*.test.ts', 'packages/*/src/**/*.test.ts', 'tests/**/*.test.ts'],
    // Chaos scenarios run real processes for minutes: `pnpm test:chaos` (vitest.chaos.config.ts).
    exclude: [...configDefaults.exclude, 'tests/chaos/**'],
    // One real Redis for the whole run (REDIS_URL, testcontainers or a private redis-server);
    // every test isolates itself with its own key prefix and queue names.
    globalSetup: ['packages/core/src/testing/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The official SDK ships ESM with extensionless imports: plain Node cannot load it, Vite can.
    server: { deps: { inline: ['@inferencesh/sdk'] } },
  },
});
