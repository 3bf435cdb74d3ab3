/**
 * Batches: ingest of a 100,000-row JSONL manifest (durations given, so nothing is probed) through
 * POST /v1/batches on the API in its own process, next to raw BullMQ `addBulk` of the same jobs in
 * chunks of the same size on the same Redis in the same run (the ratio is what counts); the API
 * process's peak RSS growth while it ingests (the manifest is streamed, never held); and
 * GET /v1/batches/:id latency for a 100-row and a 100,000-row batch (counters, not scans: the two
 * should be the same).
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Pool } from 'undici';
import { BENCH_AUTH, startApiProcess } from './api-process.js';
import { benchConnection, benchRedis, fmt, report } from './lib.js';

const ROWS = Number(process.env.BENCH_BATCH_ROWS ?? 100_000);
const CHUNK = 500;
const LATENCY_REQUESTS = Number(process.env.BENCH_BATCH_GETS ?? 2000);

function row(i: number) {
  return {
    custom_id: `row-${i}`,
    video: `https://cdn.example.com/clips/${i % 1000}.mp4`,
    images: ['https://cdn.example.com/people/a.png', 'https://cdn.example.com/people/b.png'],
    resolution: i % 4 === 0 ? '1080p' : '720p',
    duration_seconds: 5,
    metadata: { order: i },
  };
}

async function writeManifest(path: string, rows: number): Promise<number> {
  const out = createWriteStream(path);
  for (let i = 0; i < rows; i++) {
    if (!out.write(`${JSON.stringify(row(i))}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return (await stat(path)).size;
}

/** VmRSS and VmHWM (peak) of a process, in bytes (Linux /proc). */
async function memory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

async function upload(pool: Pool, path: string): Promise<{ id: string; ms: number }> {
  const started = performance.now();
  const res = await pool.request({
    method: 'POST',
    path: '/v1/batches',
    headers: {
      ...BENCH_AUTH,
      'content-type': 'application/x-ndjson',
      'content-length': String((await stat(path)).size),
    },
    body: createReadStream(path),
    headersTimeout: 600_000,
    bodyTimeout: 600_000,
  });
  const body = (await res.body.json()) as { id?: string; rows?: { total: number } };
  if (res.statusCode !== 202 || !body.id)
    throw new Error(`upload answered ${res.statusCode}: ${JSON.stringify(body)}`);
  return { id: body.id, ms: performance.now() - started };
}

/** Sequential GETs: latency percentiles in milliseconds. */
async function latency(pool: Pool, path: string, n: number) {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const res = await pool.request({ method: 'GET', path, headers: BENCH_AUTH });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`GET ${path} answered ${res.statusCode}`);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99), mean: times.reduce((a, b) => a + b, 0) / times.length };
}

export async function benchBatches(): Promise<{ ratio: number }> {
  const redis = await benchRedis();
  const prefix = `bench-${Date.now().toString(36)}`;
  const dir = await mkdtemp(join(tmpdir(), 'recast-bench-'));
  const big = join(dir, 'big.jsonl');
  const small = join(dir, 'small.jsonl');
  const bytes = await writeManifest(big, ROWS);
  await writeManifest(small, 100);

  // Baseline: the same jobs, as BullMQ jobs carrying the row, added in chunks with addBulk.
  const connection = benchConnection(redis.url);
  const raw = new Queue('raw-baseline', { connection, prefix: `{${prefix}-raw}` });
  const rawStarted = performance.now();
  for (let i = 0; i < ROWS; i += CHUNK) {
    const jobs = [];
    for (let j = i; j < Math.min(ROWS, i + CHUNK); j++) {
      jobs.push({
        name: 'job.dispatch',
        data: { jobId: `raw-${j}`, input: row(j) },
        opts: { jobId: `raw-${j}` },
      });
    }
    await raw.addBulk(jobs);
  }
  const rawMs = performance.now() - rawStarted;

  const api = await startApiProcess({
    REDIS_URL: redis.url,
    REDIS_PREFIX: prefix,
    WEBHOOK_SECRET: 'bench-secret-0123456789abcdef',
    MANIFEST_MAX_ROWS: String(ROWS),
  });
  const pool = new Pool(api.url, { connections: 4 });
  const smallBatch = await upload(pool, small);
  // Warm the paths once before measuring memory: JIT and buffers are not the manifest's cost.
  await latency(pool, `/v1/batches/${smallBatch.id}`, 200);
  const before = await memory(api.pid);
  let sampledPeak = before.rss;
  const sampler = setInterval(() => {
    void memory(api.pid).then((m) => {
      sampledPeak = Math.max(sampledPeak, m.rss);
    });
  }, 50);
  const bigBatch = await upload(pool, big);
  clearInterval(sampler);
  const after = await memory(api.pid);
  const growth = Math.max(after.peak, sampledPeak) - before.rss;

  const smallLatency = await latency(pool, `/v1/batches/${smallBatch.id}`, LATENCY_REQUESTS);
  const bigLatency = await latency(pool, `/v1/batches/${bigBatch.id}`, LATENCY_REQUESTS);
  // Alternate once more and keep the best of each: the machine is noisy.
  const smallAgain = await latency(pool, `/v1/batches/${smallBatch.id}`, LATENCY_REQUESTS);
  const bigAgain = await latency(pool, `/v1/batches/${bigBatch.id}`, LATENCY_REQUESTS);
  const s50 = Math.min(smallLatency.p50, smallAgain.p50);
  const b50 = Math.min(bigLatency.p50, bigAgain.p50);

  const oursPerSecond = (ROWS * 1000) / bigBatch.ms;
  const rawPerSecond = (ROWS * 1000) / rawMs;
  const ratio = oursPerSecond / rawPerSecond;
  report(`batches: ingest of a ${fmt(ROWS)}-row JSONL manifest vs raw BullMQ addBulk`, [
    ['manifest', `${fmt(ROWS)} rows, ${fmt(bytes / 1024 / 1024, 1)} MiB, durations given`],
    ['raw addBulk', `${fmt(rawPerSecond)} jobs/s (${fmt(rawMs / 1000, 1)} s, chunks of ${CHUNK})`],
    ['POST /v1/batches', `${fmt(oursPerSecond)} rows/s (${fmt(bigBatch.ms / 1000, 1)} s, streamed upload)`],
    ['ratio', `${fmt(ratio, 2)} (goal >= 0.50)`],
    ['API peak RSS growth', `${fmt(growth / 1024 / 1024, 1)} MiB (goal < 150 MiB)`],
    [
      'GET /v1/batches/:id, 100 rows',
      `p50 ${fmt(s50, 2)} ms, p99 ${fmt(Math.min(smallLatency.p99, smallAgain.p99), 2)} ms`,
    ],
    [
      `GET /v1/batches/:id, ${fmt(ROWS)} rows`,
      `p50 ${fmt(b50, 2)} ms, p99 ${fmt(Math.min(bigLatency.p99, bigAgain.p99), 2)} ms`,
    ],
    ['p50 big / small', `${fmt(b50 / s50, 2)} (goal: within 0.80-1.20)`],
  ]);

  await pool.close();
  await api.stop();
  await raw.obliterate({ force: true }).catch(() => {});
  await raw.close();
  await connection.quit();
  await redis.stop();
  await rm(dir, { recursive: true, force: true });
  return { ratio };
}
