/**
 * POST /v1/jobs over a real listening server (the API in its own process, as deployed), next to
 * raw BullMQ Queue.add of the same payload on the same Redis in the same run. The ratio is what
 * counts: machines are noisy.
 */
import { Queue } from 'bullmq';
import { Pool } from 'undici';
import { BENCH_AUTH, startApiProcess } from './api-process.js';
import { benchConnection, benchRedis, fmt, measure, report } from './lib.js';

const TOTAL = Number(process.env.BENCH_SUBMIT_TOTAL ?? 4000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const ROUNDS = 3;

const body = {
  video: 'https://cdn.example.com/source.mp4',
  images: ['https://cdn.example.com/person-a.png', 'https://cdn.example.com/person-b.png'],
  resolution: '1080p',
  duration_seconds: 5,
};

export async function benchSubmit(): Promise<{ ratio: number }> {
  const redis = await benchRedis();
  const prefix = `bench-${Date.now().toString(36)}`;

  const connection = benchConnection(redis.url);
  const raw = new Queue('raw-baseline', { connection, prefix: `{${prefix}-raw}` });
  const api = await startApiProcess({
    REDIS_URL: redis.url,
    REDIS_PREFIX: prefix,
    WEBHOOK_SECRET: 'bench-secret-0123456789abcdef',
  });
  const pool = new Pool(api.url, { connections: CONCURRENCY, pipelining: 1 });

  const baseline = () =>
    measure(TOTAL, CONCURRENCY, (i) =>
      raw.add(
        'job.dispatch',
        { jobId: `raw-${Date.now()}-${i}`, input: body },
        { jobId: `raw-${Date.now()}-${i}` },
      ),
    );
  const ours = () =>
    measure(TOTAL, CONCURRENCY, async () => {
      const res = await pool.request({
        method: 'POST',
        path: '/v1/jobs',
        headers: { 'content-type': 'application/json', ...BENCH_AUTH },
        body: JSON.stringify(body),
      });
      await res.body.dump();
      if (res.statusCode !== 202) throw new Error(`POST /v1/jobs answered ${res.statusCode}`);
    });

  // Warm both paths (JIT, connections, Lua script cache), then alternate rounds and keep the best.
  await measure(300, CONCURRENCY, (i) => raw.add('warm', { i }));
  await ours();
  let bestRaw = 0;
  let bestOurs = 0;
  for (let round = 0; round < ROUNDS; round++) {
    bestRaw = Math.max(bestRaw, (await baseline()).perSecond);
    bestOurs = Math.max(bestOurs, (await ours()).perSecond);
  }
  const ratio = bestOurs / bestRaw;

  // Reference: what a bare HTTP route (no Redis, no validation) reaches on this machine.
  const bare = await startApiProcess({}, 'bench/bare-server.ts');
  const barePool = new Pool(bare.url, { connections: CONCURRENCY, pipelining: 1 });
  let bestBare = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const rate = await measure(TOTAL, CONCURRENCY, async () => {
      const res = await barePool.request({
        method: 'POST',
        path: '/v1/jobs',
        headers: { 'content-type': 'application/json', ...BENCH_AUTH },
        body: JSON.stringify(body),
      });
      await res.body.dump();
    });
    bestBare = Math.max(bestBare, rate.perSecond);
  }
  await barePool.close();
  await bare.stop();
  report('submit: POST /v1/jobs vs raw BullMQ Queue.add', [
    ['requests per round', `${fmt(TOTAL)} at concurrency ${CONCURRENCY}, best of ${ROUNDS}`],
    ['raw Queue.add', `${fmt(bestRaw)} ops/s`],
    ['POST /v1/jobs', `${fmt(bestOurs)} req/s`],
    ['ratio', `${fmt(ratio, 2)} (goal >= 0.50)`],
    ['ceiling: bare Fastify POST', `${fmt(bestBare)} req/s (${fmt(bestBare / bestRaw, 2)} of raw Queue.add)`],
    ['POST /v1/jobs / bare POST', fmt(bestOurs / bestBare, 2)],
  ]);

  await pool.close();
  await api.stop();
  await raw.obliterate({ force: true }).catch(() => {});
  await raw.close();
  await connection.quit();
  await redis.stop();
  return { ratio };
}
