import { defineConfig } from 'vitest/config';

/**
 * Chaos scenarios (`pnpm test:chaos`): the system as real processes (redis-server with AOF, the
 * emulator, the API, several workers) while workers are SIGKILLed, Redis restarts and webhooks
 * are lost. Each scenario starts its own private Redis, so there is no global setup; they run one
 * after another because each one loads both cores of a small machine on its own.
 */
export default defineConfig({
  test: {
    include: ['tests/chaos/**/*.test.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 420_000,
    hookTimeout: 120_000,
    // Scenario output (the one summary line each) is the point: do not hide it.
    silent: false,
  },
});
