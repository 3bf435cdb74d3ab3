import { buildApp } from '@recast/api';
import { loadConfig as loadApiConfig } from '@recast/api/config';
import { startMetricsServer as startApiMetrics } from '@recast/api/metrics';
import type { JobView } from '@recast/core/contract';
import { createServices } from '@recast/core/engine';
import type { Logger } from '@recast/core/infra';
import { createMetrics, createMetricsRegistry, providerResponseObserver } from '@recast/core/metrics';
import { type CostGroup, costReport } from '@recast/core/money';
import { createInferenceClient } from '@recast/core/provider';
import {
  testDatabase,
  testLogger,
  testRedisClient,
  testRedisUrl,
  uniquePrefix,
  waitFor,
} from '@recast/core/testing';
import { freePort } from '@recast/core/testing/servers';
import { buildEmulator, type EmulatorOptions, type EmulatorState, type FaultsPatch } from '@recast/emulator';
import { startWorkers } from '@recast/worker';
import { loadConfig as loadWorkerConfig } from '@recast/worker/config';
import { startMetricsServer as startWorkerMetrics } from '@recast/worker/metrics';
import { afterEach } from 'vitest';

const SECRET = 'e2e-webhook-secret-0123456789';
const API_KEY = 'inf_e2e_key';

export interface SystemOptions {
  emulator?: EmulatorOptions;
  worker?: Record<string, string>;
  api?: Record<string, string>;
  /** Start no worker in this process (a test runs its own, e.g. in child processes). */
  noWorker?: boolean;
  /**
   * API keys on (the bootstrap admin key is ADMIN_KEY). Off by default: the suites about jobs,
   * money and delivery name the tenant with X-Tenant (AUTH_DISABLED), the access suite turns keys on.
   */
  auth?: boolean;
  /** Give the API and the worker a metrics registry each, served on metrics ports of their own. */
  metrics?: boolean;
  /** Hosts the API may fetch besides the emulator (SSRF_ALLOW_HOSTS), e.g. a closed local port. */
  allowHosts?: string[];
}

export const ADMIN_KEY = 'rk_e2e_admin_key_0123456789';

/**
 * The whole system in one process, each part over real HTTP on loopback and on the run's real
 * Redis: the emulator as the provider, the API, and a worker configured the way `main.ts` does it.
 */
export async function startSystem(options: SystemOptions = {}) {
  const logger: Logger = testLogger();
  const prefix = uniquePrefix('e2e');
  const redisUrl = testRedisUrl();
  // The history (PostgreSQL): a migrated database of this system's own.
  const database = await testDatabase();

  const emulator = await buildEmulator({
    apiKey: API_KEY,
    stepMs: 20,
    seed: 42,
    rateLimits: false,
    logger,
    ...options.emulator,
  });
  const emulatorUrl = await emulator.listen({ port: 0, host: '127.0.0.1' });
  const registries = options.metrics
    ? {
        api: createMetricsRegistry({ process: 'api', defaultMetrics: false }),
        worker: createMetricsRegistry({ process: 'worker', defaultMetrics: false }),
      }
    : undefined;

  // The API's address is known before it is built: PUBLIC_URL (the audit's "ours") names it.
  const apiPort = await freePort();
  const api = await buildApp({
    config: loadApiConfig({
      PUBLIC_URL: `http://127.0.0.1:${apiPort}`,
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      DATABASE_URL: database.url,
      WEBHOOK_SECRET: SECRET,
      // The emulator serves the fixtures on loopback; everything else private stays refused.
      SSRF_ALLOW_HOSTS: [new URL(emulatorUrl).host, ...(options.allowHosts ?? [])].join(','),
      ...(options.auth ? { ADMIN_API_KEY: ADMIN_KEY } : { AUTH_DISABLED: 'true' }),
      // Suites submit thousands of jobs in seconds; the per-key limit has a suite of its own.
      RATE_LIMIT_MAX: '0',
      // Tests read figures right after they move; dashboards may see them up to a second late.
      STATS_CACHE_MS: '0',
      // File inputs are uploaded to the emulator's file API.
      INFERENCE_API_URL: emulatorUrl,
      INFERENCE_API_KEY: API_KEY,
      ...options.api,
    }),
    logger,
    ...(registries ? { registry: registries.api } : {}),
  });
  const apiUrl = await api.listen({ port: apiPort, host: '127.0.0.1' });

  const workerEnv = {
    REDIS_URL: redisUrl,
    REDIS_PREFIX: prefix,
    DATABASE_URL: database.url,
    WEBHOOK_SECRET: SECRET,
    INFERENCE_API_URL: emulatorUrl,
    INFERENCE_API_KEY: API_KEY,
    // Kept outputs are downloaded from the emulator, on loopback.
    SSRF_ALLOW_HOSTS: new URL(emulatorUrl).host,
    PUBLIC_URL: apiUrl,
    SETTLE_RECHECK_MS: '200',
    RATE_LIMIT_FALLBACK_MS: '200',
    IN_FLIGHT_POLL_MS: '100',
    UNPARK_INTERVAL_MS: '500',
    FEED_INTERVAL_MS: '200',
    ARCHIVE_INTERVAL_MS: '200',
    ...options.worker,
  };
  const workerConfig = loadWorkerConfig(workerEnv);
  const client = createInferenceClient({
    baseUrl: workerConfig.INFERENCE_API_URL,
    apiKey: workerConfig.INFERENCE_API_KEY,
    statusNumbering: workerConfig.INFERENCE_STATUS_NUMBERING,
    requestTimeoutMs: workerConfig.INFERENCE_TIMEOUT_MS,
    logger,
    ...(registries ? { onResponse: providerResponseObserver(createMetrics(registries.worker)) } : {}),
  });
  const runWorkers = () =>
    startWorkers({ config: workerConfig, logger, client, registry: registries?.worker });
  let workers = options.noWorker ? undefined : await runWorkers();
  /** Start the in-process worker later (for tests that prepare Redis first). */
  async function startWorker() {
    workers ??= await runWorkers();
  }
  // The metrics ports, as server.ts and main.ts serve them (port 0: any free one).
  const metricsServers = registries
    ? {
        api: await startApiMetrics({ registry: registries.api, port: 0, host: '127.0.0.1', logger }),
        worker: await startWorkerMetrics({ registry: registries.worker, port: 0, host: '127.0.0.1', logger }),
      }
    : undefined;

  // The test's own view of Redis: the services every process builds, on a connection of its own.
  const redis = testRedisClient();
  const services = await createServices({
    config: workerConfig,
    logger,
    role: 'producer',
    name: 'e2e-test',
    redis,
  });
  const { keys, store, ledger, budgets, queues } = services;

  /** Headers that authenticate as the bootstrap admin when keys are on (none otherwise). */
  const authHeaders: Record<string, string> = options.auth ? { authorization: `Bearer ${ADMIN_KEY}` } : {};

  async function submit(
    body: Record<string, unknown>,
    headers: Record<string, string> = {},
  ): Promise<JobView> {
    const res = await fetch(`${apiUrl}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeaders, ...headers },
      body: JSON.stringify(body),
    });
    if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as JobView;
  }

  async function getJob(id: string, tenant?: string): Promise<JobView> {
    const res = await fetch(`${apiUrl}/v1/jobs/${id}`, {
      headers: { ...authHeaders, ...(tenant ? { 'x-tenant': tenant } : {}) },
    });
    if (!res.ok) throw new Error(`GET job answered ${res.status}`);
    return (await res.json()) as JobView;
  }

  async function waitTerminal(id: string, timeoutMs = 20_000, tenant?: string): Promise<JobView> {
    return waitFor(
      async () => {
        const job = await getJob(id, tenant);
        return ['completed', 'failed', 'cancelled'].includes(job.state) ? job : undefined;
      },
      { timeoutMs, what: `job ${id} terminal` },
    );
  }

  /** Spend so far (this month), grouped as asked. */
  async function costs(groupBy: CostGroup[]) {
    const today = new Date().toISOString().slice(0, 10);
    return costReport(redis, keys, { from: `${today.slice(0, 7)}-01`, to: today, groupBy });
  }

  /** Every task the provider holds, in the order they were submitted. */
  async function providerTasksOldestFirst() {
    const tasks: { id: string }[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.list({ limit: 500, ...(cursor ? { cursor } : {}) });
      tasks.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return tasks.reverse();
  }

  async function emulatorState(): Promise<EmulatorState> {
    return (await (await fetch(`${emulatorUrl}/_emulator/state`)).json()) as EmulatorState;
  }

  async function setFaults(patch: FaultsPatch): Promise<void> {
    const res = await fetch(`${emulatorUrl}/_emulator/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(patch),
    });
    if (!res.ok) throw new Error(`set faults answered ${res.status}: ${await res.text()}`);
  }

  /** Wait until no settle or dispatch step is waiting, running or delayed. */
  async function drained(): Promise<void> {
    await waitFor(
      async () => {
        const counts = await Promise.all(
          [queues.dispatch, queues.settle, queues.retain].map((q) =>
            q.getJobCounts('waiting', 'active', 'delayed', 'prioritized'),
          ),
        );
        return counts.every((c) => Object.values(c).every((n) => n === 0));
      },
      { what: 'queues drained' },
    );
  }

  return {
    /** The API's Fastify instance (in this process), for what only it can tell (its route table). */
    api,
    apiUrl,
    authHeaders,
    emulatorUrl,
    fixture: (name: string) => `${emulatorUrl}/fixtures/${name}`,
    submit,
    getJob,
    waitTerminal,
    emulatorState,
    setFaults,
    drained,
    store,
    queues,
    ledger,
    budgets,
    costs,
    providerTasksOldestFirst,
    startWorker,
    client,
    secret: SECRET,
    redis,
    keys,
    prefix,
    redisUrl,
    workerEnv,
    /** This system's history database. */
    databaseUrl: database.url,
    /** Base URLs of the API's and the worker's metrics servers (with `metrics: true`). */
    metrics: metricsServers ? { api: metricsServers.api.url, worker: metricsServers.worker.url } : undefined,
    async close() {
      await metricsServers?.api.close();
      await metricsServers?.worker.close();
      await workers?.close();
      await client.close();
      await api.close();
      await emulator.close();
      await services.close();
      await redis.quit();
      await database.drop().catch(() => undefined);
    },
  };
}

export type System = Awaited<ReturnType<typeof startSystem>>;

/**
 * One system per test, closed after it (with any extra cleanups registered by the test first).
 * Call at the top level of a test file; `start` replaces the previous system if called twice.
 */
export function systemPerTest() {
  let current: System | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    // Forget the system before closing it: a close that fails must not be retried by the next test.
    const closing = current;
    current = undefined;
    await closing?.close();
  });
  return {
    async start(options?: SystemOptions): Promise<System> {
      const previous = current;
      current = undefined;
      await previous?.close();
      current = await startSystem(options);
      return current;
    },
    onCleanup(cleanup: () => Promise<void>) {
      cleanups.push(cleanup);
    },
  };
}
