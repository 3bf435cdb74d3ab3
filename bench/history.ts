/**
 * The history (PostgreSQL) against keeping everything in Redis, in one run:
 * 1. 10,000 jobs end to end (the API and a worker as processes, the emulator as the provider), once
 *    with the archiver off (finished records stay in Redis, as they all did before the history
 *    existed) and once with it on and REDIS_JOB_RETENTION_MS small: Redis bytes per finished job
 *    left behind, and jobs per second with the archive on vs off.
 * 2. `GET /v1/costs` for one month over 1,000,000 line items: p50 / p99, next to `GET /healthz`.
 * 3. `GET /v1/jobs/:id` of an archived job (read from PostgreSQL) next to a live one (Redis).
 */
import { buildEmulator } from '@recast/emulator';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Pool } from 'undici';
import { BENCH_AUTH, startApiProcess } from './api-process.js';
import { benchDatabase, benchRedis, fmt, measure, report } from './lib.js';
import { startWorkerProcess } from './worker-process.js';

const JOBS = Number(process.env.BENCH_HISTORY_JOBS ?? 10_000);
const LINE_ITEMS = Number(process.env.BENCH_HISTORY_LINE_ITEMS ?? 1_000_000);
const RETENTION_MS = 2_000;
const SECRET = 'bench-secret-0123456789abcdef';

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface RunResult {
  /** The largest key shapes left in Redis after the run. */
  left: string;
  /** Failed jobs by error code (none expected: the emulator injects no faults here). */
  failed: string;
  jobsPerSecond: number;
  bytesPerJob: number;
  keysPerJob: number;
  archivedId?: string;
}

/** 10,000 jobs through the whole system; what they leave in Redis once they are done. */
async function endToEnd(archive: boolean): Promise<RunResult> {
  const redisServer = await benchRedis();
  const db = await benchDatabase();
  const emulator = await buildEmulator({ apiKey: 'inf_bench', stepMs: 5, rateLimits: false, seed: 3 });
  const emulatorUrl = await emulator.listen({ port: 0, host: '127.0.0.1' });
  const prefix = `bench-hist-${archive ? 'on' : 'off'}-${Date.now().toString(36)}`;
  const common = {
    REDIS_URL: redisServer.url,
    REDIS_PREFIX: prefix,
    DATABASE_URL: db.url,
    WEBHOOK_SECRET: SECRET,
    REDIS_JOB_RETENTION_MS: String(RETENTION_MS),
    // The event streams are trimmed by their own retention, the same in both runs.
    EVENTS_RETENTION_MS: '1000',
  };
  const api = await startApiProcess({
    ...common,
    SSRF_ALLOW_HOSTS: new URL(emulatorUrl).host,
    INFERENCE_API_URL: emulatorUrl,
    INFERENCE_API_KEY: 'inf_bench',
  });
  const worker = await startWorkerProcess({
    ...common,
    INFERENCE_API_URL: emulatorUrl,
    INFERENCE_API_KEY: 'inf_bench',
    PUBLIC_URL: api.url,
    SSRF_ALLOW_HOSTS: new URL(emulatorUrl).host,
    PROVIDER_SUBMITS_PER_WINDOW: '0',
    PROVIDER_READS_PER_WINDOW: '0',
    PROVIDER_MAX_IN_FLIGHT: '0',
    DISPATCH_CONCURRENCY: '32',
    SETTLE_CONCURRENCY: '32',
    SETTLE_RECHECK_MS: '50',
    FEED_INTERVAL_MS: '100',
    AUDIT_INTERVAL_MS: '0',
    // Off: the archiver does not run in this run (an hour is longer than the run).
    ARCHIVE_INTERVAL_MS: archive ? '250' : '3600000',
  });
  const redis = new Redis(redisServer.url);
  const pool = new Pool(api.url, { connections: 32 });
  const body = JSON.stringify({
    video: `${emulatorUrl}/fixtures/clip-2s-faststart.mp4`,
    images: [`${emulatorUrl}/fixtures/person-a.png`],
    duration_seconds: 2,
  });
  const keysBefore = await redis.dbsize();
  const before = await usedMemory(redis);
  const started = performance.now();
  const ids: string[] = [];
  await measure(JOBS, 32, async () => {
    const res = await pool.request({
      method: 'POST',
      path: '/v1/jobs',
      headers: { ...BENCH_AUTH, 'content-type': 'application/json' },
      body,
    });
    const job = (await res.body.json()) as { id: string };
    if (res.statusCode !== 202) throw new Error(`submit answered ${res.statusCode}`);
    ids.push(job.id);
  });
  // Done when every job is terminal: its record says so, or it has left Redis (which a job does
  // only once it is terminal and archived).
  const jobKey = (id: string) => `{${prefix}}:job:${id}`;
  const failures = new Map<string, number>();
  for (;;) {
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hmget(jobKey(id), 'state', 'error_code');
    const replies = (await pipeline.exec()) ?? [];
    let open = 0;
    failures.clear();
    for (const [, reply] of replies) {
      const [state, code] = reply as (string | null)[];
      if (state && !['completed', 'failed', 'cancelled', 'expired'].includes(state)) open++;
      if (state === 'failed') failures.set(code ?? '?', (failures.get(code ?? '?') ?? 0) + 1);
    }
    if (open === 0) break;
    await sleep(500);
  }
  const seconds = (performance.now() - started) / 1000;
  // Let what was archived leave Redis (the retention), then weigh what is left.
  if (archive) {
    for (let i = 0; i < 120; i++) {
      const [outbox, left] = await Promise.all([
        redis.zcard(`{${prefix}}:outbox:jobs`),
        redis.zcard(`{${prefix}}:archived:jobs`),
      ]);
      if (outbox === 0 && left === 0) break;
      await sleep(500);
    }
  } else {
    await sleep(RETENTION_MS + 1_000);
  }
  const after = await usedMemory(redis);
  const keysAfter = await redis.dbsize();
  // What is left, by key shape (ids replaced), largest first: where the bytes per job go.
  const shapes = new Map<string, { keys: number; bytes: number }>();
  for await (const batch of redis.scanStream({ count: 1000 })) {
    for (const key of batch as string[]) {
      const shape = key.replace(/(job|bat|task)_?[0-9A-Za-z]{20,}/g, '$1_*').replace(/[0-9a-z]{26}/g, '*');
      const bytes = Number(await redis.memory('USAGE', key)) || 0;
      const entry = shapes.get(shape) ?? { keys: 0, bytes: 0 };
      entry.keys++;
      entry.bytes += bytes;
      shapes.set(shape, entry);
    }
  }
  const left = [...shapes.entries()]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, 6)
    .map(([shape, e]) => `${shape} ${e.keys} keys ${fmt(e.bytes)} B`)
    .join('; ');
  const archivedId = archive ? ids[0] : undefined;
  const result: RunResult = {
    left,
    failed: [...failures.entries()].map(([code, n]) => `${code}: ${n}`).join(', ') || 'none',
    jobsPerSecond: JOBS / seconds,
    bytesPerJob: Math.max(0, after - before) / JOBS,
    keysPerJob: (keysAfter - keysBefore) / JOBS,
    ...(archivedId ? { archivedId } : {}),
  };
  if (archive && archivedId) {
    // An archived job next to a live one: stop the worker, submit one that then stays queued.
    await worker.stop();
    const res = await pool.request({
      method: 'POST',
      path: '/v1/jobs',
      headers: { ...BENCH_AUTH, 'content-type': 'application/json' },
      body,
    });
    const live = (await res.body.json()) as { id: string };
    const get = (id: string) => async () => {
      const r = await pool.request({ method: 'GET', path: `/v1/jobs/${id}`, headers: BENCH_AUTH });
      await r.body.dump();
      if (r.statusCode !== 200) throw new Error(`GET job answered ${r.statusCode}`);
    };
    await measure(300, 16, get(live.id));
    await measure(300, 16, get(archivedId));
    let liveBest = 0;
    let archivedBest = 0;
    for (let round = 0; round < 3; round++) {
      liveBest = Math.max(liveBest, (await measure(3_000, 16, get(live.id))).perSecond);
      archivedBest = Math.max(archivedBest, (await measure(3_000, 16, get(archivedId))).perSecond);
    }
    jobReads = { live: liveBest, archived: archivedBest };
  } else {
    await worker.stop();
  }
  await pool.close();
  await api.stop();
  await emulator.close();
  redis.disconnect();
  await redisServer.stop();
  await db.stop();
  return result;
}

let jobReads: { live: number; archived: number } | undefined;

/** 1,000,000 line items over a month, written as the archiver writes them (lines and day sums). */
async function costsOverAMillion(): Promise<{ p50: number; p99: number; healthP50: number; rows: number }> {
  const redisServer = await benchRedis();
  const db = await benchDatabase();
  const api = await startApiProcess({
    REDIS_URL: redisServer.url,
    REDIS_PREFIX: `bench-costs-${Date.now().toString(36)}`,
    DATABASE_URL: db.url,
    WEBHOOK_SECRET: SECRET,
  });
  // The API migrated the database as it started; fill it the way the archiver's statement does.
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const month = new Date().toISOString().slice(0, 7);
  await client.query(
    `INSERT INTO recast_charges (charge_id, job_id, attempt, task_id, tenant, batch_id, resolution,
       billed_ms, micro_usd, price_version, kind, day, charged_at)
     SELECT 'job_' || lpad(i::text, 12, '0'), 'job_' || lpad(i::text, 12, '0'), 1, 'task' || i,
       'tenant-' || (i % 20), 'bat_' || (i % 500), CASE WHEN i % 3 = 0 THEN '1080p' ELSE '720p' END,
       2000 + (i % 7) * 1000, (2 + (i % 7)) * CASE WHEN i % 3 = 0 THEN 60000 ELSE 30000 END,
       'bench', 'run', ($1 || '-01')::date + (i % 28), ($1 || '-01')::date + (i % 28)
     FROM generate_series(1, $2) AS i`,
    [month, LINE_ITEMS],
  );
  await client.query(
    `INSERT INTO recast_cost_days (day, tenant, batch_id, resolution, billed_ms, runs, micro_usd,
       duplicates, duplicate_micro_usd)
     SELECT day, tenant, coalesce(batch_id, '-'), resolution, sum(billed_ms), count(*), sum(micro_usd), 0, 0
     FROM recast_charges GROUP BY 1, 2, 3, 4`,
  );
  await client.query('ANALYZE');
  const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM recast_cost_days');
  await client.end();
  const pool = new Pool(api.url, { connections: 4 });
  const path = `/v1/costs?from=${month}-01&to=${month}-28&group_by=day,resolution`;
  const timeOf = async (p: string) => {
    const t = performance.now();
    const r = await pool.request({ method: 'GET', path: p, headers: BENCH_AUTH });
    await r.body.dump();
    if (r.statusCode !== 200) throw new Error(`GET ${p} answered ${r.statusCode}`);
    return performance.now() - t;
  };
  const sample = async (p: string, n: number) => {
    const times: number[] = [];
    for (let i = 0; i < n; i++) times.push(await timeOf(p));
    times.sort((a, b) => a - b);
    return { p50: times[Math.floor(n * 0.5)]!, p99: times[Math.floor(n * 0.99)]! };
  };
  await sample(path, 10);
  const costs = await sample(path, 200);
  const health = await sample('/healthz', 200);
  await pool.close();
  await api.stop();
  await redisServer.stop();
  await db.stop();
  return { ...costs, healthP50: health.p50, rows: rows[0]!.n };
}

export async function benchHistory(): Promise<{ ratio: number }> {
  const off = await endToEnd(false);
  const on = await endToEnd(true);
  report(
    `history: ${fmt(JOBS)} jobs end to end, archiver off vs on (REDIS_JOB_RETENTION_MS=${RETENTION_MS})`,
    [
      [
        'archiver off: Redis bytes per finished job',
        `${fmt(off.bytesPerJob)} B (${fmt(off.keysPerJob, 2)} keys per job)`,
      ],
      [
        'archiver on: Redis bytes per finished job',
        `${fmt(on.bytesPerJob)} B (${fmt(on.keysPerJob, 2)} keys per job)`,
      ],
      ['left in Redis, archiver off', off.left],
      ['left in Redis, archiver on', on.left],
      ['failed jobs (off / on)', `${off.failed} / ${on.failed}`],
      ['archiver off: jobs/s', fmt(off.jobsPerSecond)],
      [
        'archiver on: jobs/s',
        `${fmt(on.jobsPerSecond)} (${fmt(on.jobsPerSecond / off.jobsPerSecond, 2)} of off)`,
      ],
      ...(jobReads
        ? ([
            ['GET /v1/jobs/:id live (Redis)', `${fmt(jobReads.live)} req/s`],
            [
              'GET /v1/jobs/:id archived (PostgreSQL)',
              `${fmt(jobReads.archived)} req/s (${fmt(jobReads.archived / jobReads.live, 2)} of live)`,
            ],
          ] as [string, string][])
        : []),
    ],
  );
  const costs = await costsOverAMillion();
  report(
    `history: GET /v1/costs for one month over ${fmt(LINE_ITEMS)} line items (${fmt(costs.rows)} daily sums)`,
    [
      ['GET /v1/costs?group_by=day,resolution', `p50 ${fmt(costs.p50, 1)} ms, p99 ${fmt(costs.p99, 1)} ms`],
      ['GET /healthz (one HTTP round trip)', `p50 ${fmt(costs.healthP50, 1)} ms`],
    ],
  );
  return { ratio: on.jobsPerSecond / off.jobsPerSecond };
}
