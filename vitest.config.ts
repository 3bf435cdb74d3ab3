import { configDefaults, defineConfig } from 'vitest/config';

/**
 * The suites that load the whole machine on their own (eight worker processes, 10,000-row
 * manifests, a browser) run one at a time after the rest: on a 2-core machine, two of them at once
 * only measure each other. Everything else runs in parallel first.
 */
const HEAVY = [
  'tests/e2e/money.test.ts',
  'tests/e2e/batches.test.ts',
  'tests/e2e/dashboard.test.ts',
  'tests/e2e/start.test.ts',
];

const shared = {
  // One real Redis for the whole run (REDIS_URL, testcontainers or a private redis-server);
  // every test isolates itself with its own key prefix and queue names.
  globalSetup: ['packages/core/src/testing/global-setup.ts'],
  testTimeout: 30_000,
  hookTimeout: 60_000,
  // The official SDK ships ESM with extensionless imports: plain Node cannot load it, Vite can.
  server: { deps: { inline: ['@inferencesh/sdk'] } },
};

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          ...shared,
          name: 'parallel',
          include: ['apps/*/src/**/*.test.ts', 'packages/*/src/**/*.test.ts', 'tests/**/*.test.ts'],
          // Chaos scenarios run real processes for minutes: `pnpm test:chaos` (vitest.chaos.config.ts).
          exclude: [...configDefaults.exclude, 'tests/chaos/**', ...HEAVY],
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: 'heavy',
          include: HEAVY,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
