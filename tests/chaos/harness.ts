import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeys, createLogger, createRedis, type Keys } from '@recast/core/infra';
import { createQueues, type Queues } from '@recast/core/model';
import { Ledger } from '@recast/core/money';
import { freePort, SentinelGroup } from '@recast/core/testing/servers';
import type { Redis } from 'ioredis';
import { ChaosPostgres } from './postgres-server.js';
import { type Service, Slot } from './processes.js';
import { ChaosRedis } from './redis-server.js';
import { type SlowProxy, startSlowProxy } from './slow-proxy.js';

export const EMULATOR_API_KEY = 'inf_chaos_emulator';
/** The webhook the other client's tasks carry: it names no job of ours (see startOtherClient). */
export const OTHER_CLIENT_WEBHOOK = 'http://127.0.0.1:9/other-client/hook';
export const TERMINAL_STATES = ['completed', 'failed', 'cancelled'] as const;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface ChaosSystemOptions {
  /** Scenario name: key prefix, log directory and summary line. */
  scenario: string;
  workers: number;
  emulator?: { stepMs?: number; seed?: number; faults?: Record<string, unknown> };
  /** Put a proxy between workers and the emulator that holds each submit's answer this long. */
  slowSubmitAnswers?: { min: number; max: number };
  appendfsync?: 'always' | 'everysec';
  /**
   * Redis as in production: a primary, a replica and three sentinels (see SentinelGroup), every
   * process connected through the sentinels. Without it, one restartable redis-server.
   */
  sentinel?: boolean;
  /** Env for every API and worker process (REDIS_WAIT_REPLICAS, ...). */
  commonEnv?: Record<string, string>;
  workerEnv?: Record<string, string>;
  apiEnv?: Record<string, string>;
}

/** Worker knobs that make recovery fast enough to watch in a test (see the README's table). */
export const FAST_RECOVERY_ENV: Record<string, string> = {
  PROVIDER_SUBMITS_PER_WINDOW: '0',
  PROVIDER_MAX_IN_FLIGHT: '0',
  SETTLE_RECHECK_MS: '200',
  IN_FLIGHT_SWEEP_MS: '1000',
  IN_FLIGHT_POLL_MS: '100',
  UNPARK_INTERVAL_MS: '500',
  FEED_INTERVAL_MS: '200',
  RATE_LIMIT_FALLBACK_MS: '200',
  // Being added alongside reconciliation and orphan adoption; unknown variables are ignored.
  WORKER_LOCK_MS: '3000',
  ORPHAN_GRACE_MS: '1000',
  RECONCILE_INTERVAL_MS: '500',
  // A quiet task is polled once overdue against its expected duration, 2 s after its last move at
  // the soonest and 20 s at the latest: as production does, at a faster scale. Until tasks have
  // completed, 2 s per output second is expected (the slowest emulator here: six 1 s steps for a
  // 3 s clip), as production's default is the provider's. A flat 2 s, or a default under the real
  // speed, polls every task of a burst several times before its webhook: more reads than the
  // provider's budget of 1,000 a minute allows.
  RECONCILE_AFTER_MS: '20000',
  RECONCILE_MIN_AFTER_MS: '2000',
  RECONCILE_CANCELLING_AFTER_MS: '2000',
  ETA_DEFAULT_MS_PER_OUTPUT_SECOND: '2000',
  ORPHAN_AFTER_MS: '2000',
};

export interface SubmitOutcome {
  accepted: { id: string; at: number }[];
  refused: { index: number; at: number; status: number | 'network'; message: string }[];
}

export interface JobRow {
  id: string;
  state?: string | undefined;
  attempt?: number | undefined;
  version?: number | undefined;
  task_id?: string | undefined;
  cost_micro_usd?: number | undefined;
  error_code?: string | undefined;
}

export interface EmulatorTask {
  id: string;
  status_text?: string;
  webhook: string | null;
}

export interface BillLine {
  task_id: string;
  micro_usd: number;
}

export interface EmulatorState {
  bill: { total_micro_usd: number; tasks: BillLine[] };
  tasks: { total: number; by_status: Record<string, number> };
  submits: number;
  in_flight: { current: number; max: number };
  webhooks: { sent: number; dropped: number; duplicated: number; reordered: number; failed: number };
}

/**
 * The whole system as deployed, each part its own OS process: a private redis-server with AOF
 * (restartable on the same port and data dir), the emulator, the API and N workers (killable and
 * respawned), all logging to files under one directory.
 */
export async function startChaosSystem(options: ChaosSystemOptions) {
  const startedAt = Date.now();
  const logDir = await mkdtemp(join(tmpdir(), `recast-chaos-${options.scenario}-`));
  const topology: Topology = options.sentinel
    ? {
        kind: 'sentinel',
        group: await SentinelGroup.start({
          dir: join(logDir, 'redis'),
          appendfsync: options.appendfsync ?? 'everysec',
        }),
      }
    : {
        kind: 'single',
        redis: await ChaosRedis.start({
          dir: join(logDir, 'redis-data'),
          logPath: join(logDir, 'redis.log'),
          appendfsync: options.appendfsync ?? 'everysec',
        }),
      };
  const redisEnv = topology.kind === 'sentinel' ? topology.group.env() : { REDIS_URL: topology.redis.url };
  const stopRedis = () =>
    topology.kind === 'sentinel' ? topology.group.stop() : topology.redis.stop('SIGTERM');
  // The history: PostgreSQL of the scenario's own (the processes migrate it as they start).
  const postgres = await ChaosPostgres.start();
  const prefix = `chaos-${options.scenario}-${randomBytes(3).toString('hex')}`;
  const secret = `chaos-${randomBytes(16).toString('hex')}`;
  const [emulatorPort, apiPort] = [await freePort(), await freePort()];
  const emulatorUrl = `http://127.0.0.1:${emulatorPort}`;
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const common = {
    ...redisEnv,
    REDIS_PREFIX: prefix,
    DATABASE_URL: postgres.url,
    WEBHOOK_SECRET: secret,
    LOG_LEVEL: 'info',
    ...options.commonEnv,
  };
  // Jobs are submitted with X-Tenant, a thousand in seconds: access control and the per-key rate
  // limit are not what these scenarios are about.
  const apiOnly = { AUTH_DISABLED: 'true', RATE_LIMIT_MAX: '0' };

  const slots: Slot[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  const answers = async (url: string) => {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.ok;
  };

  try {
    const emulator = new Slot({
      name: 'emulator',
      entry: 'apps/emulator/src/server.ts',
      logDir,
      env: {
        LOG_LEVEL: 'info',
        EMULATOR_PORT: String(emulatorPort),
        EMULATOR_HOST: '127.0.0.1',
        EMULATOR_API_KEY,
        EMULATOR_STEP_MS: String(options.emulator?.stepMs ?? 25),
        EMULATOR_SEED: String(options.emulator?.seed ?? 7),
        EMULATOR_RATE_LIMITS: 'off',
        // The emulator downloads every task's inputs from its own fixture server, on the same two
        // cores as everything else in a scenario (and another client's 50 tasks a second): its
        // 30 s input deadline models the provider's network, not a loaded test machine.
        EMULATOR_DOWNLOAD_TIMEOUT_MS: '120000',
        EMULATOR_FAULTS: JSON.stringify(options.emulator?.faults ?? {}),
      },
      readyProbe: () => answers(`${emulatorUrl}/_emulator/faults`),
    });
    slots.push(emulator);
    const api = new Slot({
      name: 'api',
      entry: 'apps/api/src/server.ts',
      logDir,
      env: {
        ...common,
        ...apiOnly,
        PORT: String(apiPort),
        HOST: '127.0.0.1',
        SSRF_ALLOW_HOSTS: `127.0.0.1:${emulatorPort}`,
        ...options.apiEnv,
      },
      readyProbe: () => answers(`${apiUrl}/readyz`),
    });
    slots.push(api);
    await Promise.all([emulator.current.waitReady(), api.current.waitReady()]);

    let proxy: SlowProxy | undefined;
    if (options.slowSubmitAnswers) {
      proxy = await startSlowProxy({ target: emulatorUrl, submitAnswerDelayMs: options.slowSubmitAnswers });
      cleanups.push(() => proxy!.close());
    }
    const workerEnv: Record<string, string> = {
      ...common,
      INFERENCE_API_URL: proxy?.url ?? emulatorUrl,
      INFERENCE_API_KEY: EMULATOR_API_KEY,
      PUBLIC_URL: apiUrl,
      ...FAST_RECOVERY_ENV,
      ...options.workerEnv,
    };
    const workers: Slot[] = [];
    for (let i = 0; i < options.workers; i++) {
      const slot = new Slot({
        name: `worker-${i}`,
        entry: 'apps/worker/src/main.ts',
        logDir,
        env: workerEnv,
        readyLine: 'worker started',
      });
      workers.push(slot);
      slots.push(slot);
    }
    await Promise.all(workers.map((w) => w.current.waitReady()));

    // The harness reads through the same factory as the apps (through the sentinels when there
    // are some), as a worker: its reads wait out a failover instead of failing.
    const client = createRedis({
      target: topology.kind === 'sentinel' ? topology.group.target() : topology.redis.url,
      role: 'worker',
      logger: createLogger({ level: 'silent', name: 'chaos-harness' }),
      name: 'chaos-harness',
    });
    const keys = createKeys(prefix);
    const queues = createQueues(client, keys);
    const ledger = new Ledger(client, keys);
    cleanups.push(async () => {
      await queues.close().catch(() => {});
      client.disconnect();
    });

    return new ChaosSystem({
      scenario: options.scenario,
      startedAt,
      logDir,
      topology,
      stopRedis,
      postgres,
      prefix,
      secret,
      emulatorUrl,
      apiUrl,
      proxy,
      emulator,
      api,
      workers,
      slots,
      client,
      keys,
      queues,
      ledger,
      cleanups,
    });
  } catch (err) {
    for (const slot of slots.reverse()) await slot.stop().catch(() => {});
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    await stopRedis();
    await postgres.close();
    throw new Error(`chaos system did not start (logs in ${logDir}): ${(err as Error).message}`);
  }
}

/** One restartable redis-server, or the production shape (primary, replica, three sentinels). */
export type Topology = { kind: 'single'; redis: ChaosRedis } | { kind: 'sentinel'; group: SentinelGroup };

interface ChaosParts {
  scenario: string;
  startedAt: number;
  logDir: string;
  topology: Topology;
  stopRedis: () => Promise<void>;
  postgres: ChaosPostgres;
  prefix: string;
  secret: string;
  emulatorUrl: string;
  apiUrl: string;
  proxy: SlowProxy | undefined;
  emulator: Slot;
  api: Slot;
  workers: Slot[];
  slots: Slot[];
  client: Redis;
  keys: Keys;
  queues: Queues;
  ledger: Ledger;
  cleanups: (() => Promise<void>)[];
}

export class ChaosSystem {
  readonly scenario: string;
  readonly startedAt: number;
  readonly logDir: string;
  readonly topology: Topology;
  readonly postgres: ChaosPostgres;
  readonly prefix: string;
  readonly secret: string;
  readonly emulatorUrl: string;
  readonly apiUrl: string;
  readonly proxy: SlowProxy | undefined;
  readonly workers: Slot[];
  readonly client: Redis;
  readonly keys: Keys;
  readonly queues: Queues;
  readonly ledger: Ledger;
  readonly kills: { slot: string; pid: number; generation: number; at: number }[] = [];
  private readonly parts: ChaosParts;

  constructor(parts: ChaosParts) {
    this.parts = parts;
    this.scenario = parts.scenario;
    this.startedAt = parts.startedAt;
    this.logDir = parts.logDir;
    this.topology = parts.topology;
    this.postgres = parts.postgres;
    this.prefix = parts.prefix;
    this.secret = parts.secret;
    this.emulatorUrl = parts.emulatorUrl;
    this.apiUrl = parts.apiUrl;
    this.proxy = parts.proxy;
    this.workers = parts.workers;
    this.client = parts.client;
    this.keys = parts.keys;
    this.queues = parts.queues;
    this.ledger = parts.ledger;
  }

  /** The one redis-server of a single-node scenario. */
  get redis(): ChaosRedis {
    if (this.topology.kind !== 'single') throw new Error('this scenario runs Redis through Sentinel');
    return this.topology.redis;
  }

  /** The primary, replica and sentinels of a failover scenario. */
  get sentinel(): SentinelGroup {
    if (this.topology.kind !== 'sentinel') throw new Error('this scenario runs one redis-server');
    return this.topology.group;
  }

  fixture(name: string): string {
    return `${this.emulatorUrl}/fixtures/${name}`;
  }

  /** Exits nobody asked for (a process that died by itself), across every service. */
  crashes() {
    return this.parts.slots.flatMap((slot) =>
      slot.crashes.map((c) => ({ service: slot.spec.name, ...c.exit, logPath: c.logPath })),
    );
  }

  /** SIGKILL a random worker that is up and serving, and respawn it at once. */
  async killRandomWorker(random: () => number = Math.random): Promise<void> {
    let ready: Slot[] = [];
    for (let waited = 0; ; waited += 100) {
      ready = this.workers.filter((w) => w.current.ready || w.current.alive);
      const serving = ready.filter((w) => w.current.ready);
      if (serving.length > 0) {
        ready = serving;
        break;
      }
      // Respawned workers mark themselves ready once they log it; check their logs.
      await Promise.all(ready.map((w) => w.current.waitReady(200).catch(() => {})));
      if (waited > 60_000) throw new Error('no worker became ready to be killed');
    }
    const slot = ready[Math.floor(random() * ready.length)]!;
    const victim: Service = slot.current;
    this.kills.push({ slot: slot.spec.name, pid: victim.pid, generation: victim.generation, at: Date.now() });
    await slot.killAndRespawn();
    // Mark the respawn ready in the background, so the next pick knows who serves.
    void slot.current.waitReady().catch(() => {});
  }

  /** SIGKILL the worker whose process id this is (and respawn it); false when none has it. */
  async killWorkerByPid(pid: number): Promise<boolean> {
    const slot = this.workers.find((w) => w.current.pid === pid && w.current.alive);
    if (!slot) return false;
    const victim: Service = slot.current;
    this.kills.push({ slot: slot.spec.name, pid: victim.pid, generation: victim.generation, at: Date.now() });
    await slot.killAndRespawn();
    void slot.current.waitReady().catch(() => {});
    return true;
  }

  /**
   * POST /v1/jobs `count` times, at most `concurrency` at once and no faster than `ratePerSec`.
   * A 202 is the promise this harness then holds the system to; anything else is a refusal.
   */
  async submitJobs(options: {
    count: number;
    body: (index: number) => Record<string, unknown>;
    headers?: (index: number) => Record<string, string>;
    ratePerSec?: number;
    concurrency?: number;
  }): Promise<SubmitOutcome> {
    const outcome: SubmitOutcome = { accepted: [], refused: [] };
    const begin = Date.now();
    let next = 0;
    const one = async (index: number) => {
      if (options.ratePerSec) {
        const due = begin + (index * 1000) / options.ratePerSec;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      const at = Date.now();
      try {
        const res = await fetch(`${this.apiUrl}/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...options.headers?.(index) },
          body: JSON.stringify(options.body(index)),
          signal: AbortSignal.timeout(15_000),
        });
        const text = await res.text();
        if (res.status === 202) {
          const id = (JSON.parse(text) as { id: string }).id;
          outcome.accepted.push({ id, at });
        } else outcome.refused.push({ index, at, status: res.status, message: text.slice(0, 300) });
      } catch (err) {
        outcome.refused.push({ index, at, status: 'network', message: (err as Error).message });
      }
    };
    await Promise.all(
      Array.from({ length: options.concurrency ?? 16 }, async () => {
        for (let i = next++; i < options.count; i = next++) await one(i);
      }),
    );
    return outcome;
  }

  /** The job records as stored (the hash at `{prefix}:job:<id>`), read in one pipeline. */
  async readJobs(ids: string[]): Promise<Map<string, JobRow>> {
    const rows = new Map<string, JobRow>();
    for (let start = 0; start < ids.length; start += 1000) {
      const slice = ids.slice(start, start + 1000);
      const pipeline = this.client.pipeline();
      for (const id of slice)
        pipeline.hmget(
          this.keys.job(id),
          'state',
          'attempt',
          'version',
          'task_id',
          'cost_micro_usd',
          'error_code',
        );
      const replies = (await pipeline.exec()) ?? [];
      slice.forEach((id, i) => {
        const [err, values] = replies[i] ?? [];
        if (err) throw err;
        const [state, attempt, version, taskId, cost, errorCode] = values as (string | null)[];
        const num = (v: string | null | undefined) => (v == null ? undefined : Number(v));
        rows.set(id, {
          id,
          state: state ?? undefined,
          attempt: num(attempt),
          version: num(version),
          task_id: taskId ?? undefined,
          cost_micro_usd: num(cost),
          error_code: errorCode ?? undefined,
        });
      });
    }
    // A finished job leaves Redis REDIS_JOB_RETENTION_MS after it is archived: read those from
    // PostgreSQL (while it is down they stay unknown, so a wait goes on).
    const gone = [...rows.values()].filter((r) => r.state === undefined).map((r) => r.id);
    if (gone.length > 0) {
      const archived = await this.postgres
        .query<{ id: string; record: Record<string, unknown> }>(
          'SELECT id, record FROM recast_jobs WHERE id = ANY($1)',
          [gone],
        )
        .catch(() => []);
      for (const { id, record } of archived) {
        const num = (v: unknown) => (v == null ? undefined : Number(v));
        rows.set(id, {
          id,
          state: record.state as string,
          attempt: num(record.attempt),
          version: num(record.version),
          task_id: (record.task_id as string | undefined) ?? undefined,
          cost_micro_usd: num(record.cost_micro_usd),
          error_code: (record.error_code as string | undefined) ?? undefined,
        });
      }
    }
    return rows;
  }

  async countStates(ids: string[]): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const row of (await this.readJobs(ids)).values()) {
      const state = row.state ?? 'MISSING';
      counts[state] = (counts[state] ?? 0) + 1;
    }
    return counts;
  }

  /**
   * Wait until every id is terminal, the deadline passes, or nothing moved for `stallMs` (no job
   * changed state or version: waiting longer would only make a failing run slower).
   */
  async waitAllTerminal(ids: string[], options: { timeoutMs: number; stallMs: number }) {
    const deadline = Date.now() + options.timeoutMs;
    let fingerprint = '';
    let lastMove = Date.now();
    for (;;) {
      const rows = await this.readJobs(ids);
      const open = [...rows.values()].filter((r) => !isTerminal(r.state));
      if (open.length === 0) return { done: true, why: 'all terminal' };
      const now = Date.now();
      const print = open.map((r) => `${r.id}:${r.state}:${r.version}`).join(',');
      if (print !== fingerprint) {
        fingerprint = print;
        lastMove = now;
      }
      if (now > deadline) return { done: false, why: `deadline passed with ${open.length} open` };
      if (now - lastMove > options.stallMs)
        return { done: false, why: `nothing moved for ${options.stallMs} ms with ${open.length} open` };
      await sleep(500);
    }
  }

  /**
   * After the jobs are terminal, let the rest settle: the provider finishes what it still runs
   * (an orphan task may still be billed), queues drain, reservations and in-flight slots go back.
   */
  async quiesce(timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = await this.leftovers();
      const quiet =
        left.provider_in_flight === 0 &&
        left.queued_steps === 0 &&
        left.reservations === 0 &&
        left.in_flight_slots === 0;
      if (quiet || Date.now() > deadline) return left;
      await sleep(250);
    }
  }

  async leftovers() {
    const state = await this.emulatorState();
    const counts = await Promise.all(
      [this.queues.dispatch, this.queues.settle].map((q) =>
        q.getJobCounts('waiting', 'active', 'prioritized'),
      ),
    );
    return {
      provider_in_flight: state.in_flight.current,
      queued_steps: counts.reduce((n, c) => n + Object.values(c).reduce((a, b) => a + b, 0), 0),
      reservations: await this.client.hlen(this.keys.reservations()),
      in_flight_slots: await this.client.zcard(this.keys.limitsInFlight()),
    };
  }

  async emulatorState(): Promise<EmulatorState> {
    const res = await fetch(`${this.emulatorUrl}/_emulator/state`);
    if (!res.ok) throw new Error(`GET /_emulator/state answered ${res.status}`);
    return (await res.json()) as EmulatorState;
  }

  async setFaults(patch: Record<string, unknown>): Promise<void> {
    const res = await fetch(`${this.emulatorUrl}/_emulator/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(patch),
    });
    if (!res.ok) throw new Error(`PUT /_emulator/faults answered ${res.status}: ${await res.text()}`);
  }

  /** Every task the provider holds, with the webhook URL it was submitted with. */
  async emulatorTasks(): Promise<EmulatorTask[]> {
    const tasks: EmulatorTask[] = [];
    let cursor = '';
    do {
      const res = await fetch(`${this.emulatorUrl}/tasks/list`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${EMULATOR_API_KEY}` },
        body: JSON.stringify({ limit: 100, ...(cursor ? { cursor, direction: 'next' } : {}) }),
      });
      if (!res.ok) throw new Error(`POST /tasks/list answered ${res.status}: ${await res.text()}`);
      const body = (await res.json()) as { data?: unknown };
      const page = (body.data ?? body) as { items: EmulatorTask[]; next_cursor: string; has_next: boolean };
      tasks.push(...page.items.map((t) => ({ id: t.id, status_text: t.status_text, webhook: t.webhook })));
      cursor = page.has_next ? page.next_cursor : '';
    } while (cursor);
    return tasks;
  }

  /**
   * Another client of the same provider account: it creates tasks (with no webhook of ours) at
   * `ratePerSec` until stopped, so the account's task list grows far past what a search of its
   * newest pages would cover. Its tasks fail fast at the provider (their video is unreachable),
   * unbilled. `stop()` answers their ids, which the audit leaves out.
   */
  startOtherClient(ratePerSec: number): { stop(): Promise<Set<string>> } {
    const ids = new Set<string>();
    let stopped = false;
    const begin = Date.now();
    const post = async () => {
      const res = await fetch(`${this.emulatorUrl}/apps/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${EMULATOR_API_KEY}` },
        body: JSON.stringify({
          app: 'pruna/p-video-replace',
          webhook: OTHER_CLIENT_WEBHOOK,
          input: { video: 'http://127.0.0.1:9/other-client.mp4', images: [this.fixture('person-a.png')] },
        }),
        signal: AbortSignal.timeout(10_000),
      });
      const answer = (await res.json()) as { data?: { id?: string } };
      if (answer.data?.id) ids.add(answer.data.id);
    };
    let inFlight = 0;
    const pending = new Set<Promise<void>>();
    const running = (async () => {
      for (let sent = 0; !stopped; sent++) {
        const due = begin + (sent * 1000) / ratePerSec;
        await sleep(Math.max(0, due - Date.now()));
        // A slow provider is not flooded: at most 32 of these requests at once.
        if (inFlight >= 32) continue;
        inFlight++;
        const sending = post()
          .catch(() => undefined)
          .finally(() => {
            inFlight--;
            pending.delete(sending);
          });
        pending.add(sending);
      }
    })();
    return {
      async stop() {
        stopped = true;
        await running;
        // Every request sent is answered (or timed out) before its ids are counted.
        await Promise.all([...pending]);
        return ids;
      },
    };
  }

  /**
   * Where each job is in the machinery, for a report on jobs that never ended: its record's
   * fields, its place in a tenant's line or in the feeder's hand-over set, and every BullMQ step
   * (dispatch or settle) that names it, with its state.
   */
  async whereAre(jobIds: string[]): Promise<string> {
    const out: string[] = [];
    const fair = this.keys.fairPrefix();
    const lines = await this.client.keys(`${fair}line:*`);
    const feeding = await this.client.zrange(`${fair}feeding`, 0, -1);
    const steps = new Map<string, string[]>();
    for (const queue of [this.queues.dispatch, this.queues.settle]) {
      for (const state of ['wait', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const) {
        for (const job of await queue.getJobs([state], 0, 5_000)) {
          const id = (job?.data as { jobId?: string } | undefined)?.jobId;
          if (!id || !jobIds.includes(id)) continue;
          const seen = steps.get(id) ?? [];
          seen.push(`${queue.name}:${job.id}:${state}${job.failedReason ? `(${job.failedReason})` : ''}`);
          steps.set(id, seen);
        }
      }
    }
    for (const id of jobIds) {
      const record = await this.client.hgetall(this.keys.job(id));
      const inLines: string[] = [];
      for (const line of lines) if ((await this.client.lpos(line, id)) !== null) inLines.push(line);
      const fields = Object.entries(record)
        .filter(([k]) => !['input', 'metadata', 'estimate', 'trace'].includes(k))
        .map(([k, v]) => `${k}=${v.slice(0, 80)}`)
        .join(' ');
      out.push(
        `${id}: ${fields || '(no record)'} | lines=[${inLines.join(',')}] feeding=[${feeding
          .filter((m) => m.startsWith(`${id}|`))
          .join(',')}] steps=[${(steps.get(id) ?? []).join(',')}]`,
      );
    }
    return out.join('\n');
  }

  /** Lines of every log that mention one of `needles`, at most `perNeedle` each. */
  async evidence(needles: string[], perNeedle = 12): Promise<string> {
    const { readdir, readFile } = await import('node:fs/promises');
    const files = (await readdir(this.logDir)).filter((f) => f.endsWith('.log'));
    const out: string[] = [];
    const texts = await Promise.all(
      files.map(async (f) => [f, await readFile(join(this.logDir, f), 'utf8')]),
    );
    for (const needle of needles) {
      out.push(`--- ${needle}`);
      let n = 0;
      for (const [file, text] of texts) {
        for (const line of text!.split('\n')) {
          if (!line.includes(needle)) continue;
          out.push(`${file}: ${line.slice(0, 600)}`);
          if (++n >= perNeedle) break;
        }
        if (n >= perNeedle) break;
      }
    }
    return out.join('\n');
  }

  /** How many lines of every log mention `needle` (a log message, say). */
  async countInLogs(needle: string): Promise<number> {
    const { readdir, readFile } = await import('node:fs/promises');
    const files = (await readdir(this.logDir)).filter((f) => f.endsWith('.log'));
    let n = 0;
    for (const f of files) {
      for (const line of (await readFile(join(this.logDir, f), 'utf8')).split('\n'))
        if (line.includes(needle)) n++;
    }
    return n;
  }

  /** Stop everything; the logs stay (and are named) when the scenario failed. */
  async close(options: { keepLogs: boolean }): Promise<void> {
    for (const slot of [...this.parts.slots].reverse()) await slot.stop().catch(() => {});
    for (const cleanup of [...this.parts.cleanups].reverse()) await cleanup().catch(() => {});
    await this.parts.stopRedis();
    await this.postgres.close();
    if (!options.keepLogs) await rm(this.logDir, { recursive: true, force: true });
  }
}

export function isTerminal(state: string | undefined): boolean {
  return (TERMINAL_STATES as readonly string[]).includes(state ?? '');
}

export function took(system: ChaosSystem): string {
  return `${Math.round((Date.now() - system.startedAt) / 1000)}s`;
}

/** The one line each scenario ends with. */
export function printSummary(scenario: string, fields: Record<string, string | number>): string {
  const line = `[chaos] ${scenario}: ${Object.entries(fields)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`;
  process.stdout.write(`${line}\n`);
  return line;
}

/** Free-form detail for a failed scenario (which jobs, which logs). */
export function printDetail(text: string): void {
  process.stdout.write(`${text}\n`);
}
