/**
 * Dashboards polling: GET /v1/jobs/:id and GET /v1/stats with 100 concurrent pollers over a real
 * listening API (its own process, authenticated as in production), each with and without
 * If-None-Match (the 304 path), next to a bare Fastify route reading one Redis hash in the same
 * run (the ceiling of any poll: one HTTP round trip and one HGETALL).
 */
import { Pool } from 'undici';
import { BENCH_AUTH, startApiProcess } from './api-process.js';
import { benchRedis, fmt, measure, report } from './lib.js';

const TOTAL = Number(process.env.BENCH_POLL_TOTAL ?? 10_000);
const POLLERS = Number(process.env.BENCH_POLLERS ?? 100);
const ROUNDS = 3;

export async function benchPolling(): Promise<{ ratio: number }> {
  const redis = await benchRedis();
  const prefix = `bench-${Date.now().toString(36)}`;
  const api = await startApiProcess({
    REDIS_URL: redis.url,
    REDIS_PREFIX: prefix,
    WEBHOOK_SECRET: 'bench-secret-0123456789abcdef',
  });
  const bare = await startApiProcess({ REDIS_URL: redis.url }, 'bench/bare-server.ts');
  const pool = new Pool(api.url, { connections: POLLERS, pipelining: 1 });
  const barePool = new Pool(bare.url, { connections: POLLERS, pipelining: 1 });

  // One job to poll (a duration hint: nothing is probed), and its record's key for the baseline.
  const res = await pool.request({
    method: 'POST',
    path: '/v1/jobs',
    headers: { ...BENCH_AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({
      video: 'https://cdn.example.com/a.mp4',
      images: ['https://cdn.example.com/p.png'],
      duration_seconds: 5,
    }),
  });
  const job = (await res.body.json()) as { id: string };
  const jobKey = `{${prefix}}:job:${job.id}`;

  const get = (p: Pool, path: string, headers: Record<string, string>, expect: number) => async () => {
    const r = await p.request({ method: 'GET', path, headers });
    await r.body.dump();
    if (r.statusCode !== expect) throw new Error(`GET ${path} answered ${r.statusCode}, not ${expect}`);
  };
  const etagOf = async (path: string) => {
    const r = await pool.request({ method: 'GET', path, headers: BENCH_AUTH });
    await r.body.dump();
    return String(r.headers.etag);
  };
  const jobEtag = await etagOf(`/v1/jobs/${job.id}`);
  const statsEtag = await etagOf('/v1/stats');
  const cases: [string, () => Promise<void>][] = [
    ['bare route, one HGETALL', get(barePool, `/hash/${encodeURIComponent(jobKey)}`, {}, 200)],
    ['GET /v1/jobs/:id', get(pool, `/v1/jobs/${job.id}`, BENCH_AUTH, 200)],
    [
      'GET /v1/jobs/:id, If-None-Match (304)',
      get(pool, `/v1/jobs/${job.id}`, { ...BENCH_AUTH, 'if-none-match': jobEtag }, 304),
    ],
    ['GET /v1/stats', get(pool, '/v1/stats', BENCH_AUTH, 200)],
    [
      'GET /v1/stats, If-None-Match (304)',
      get(pool, '/v1/stats', { ...BENCH_AUTH, 'if-none-match': statsEtag }, 304),
    ],
  ];
  // Warm every path, then alternate rounds and keep each one's best (the machine is noisy).
  for (const [, op] of cases) await measure(500, POLLERS, op);
  const best = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, op] of cases) {
      const rate = await measure(TOTAL, POLLERS, op);
      best.set(name, Math.max(best.get(name) ?? 0, rate.perSecond));
    }
  }
  const baseline = best.get(cases[0]![0])!;
  report(`polling: ${POLLERS} concurrent pollers vs a bare route reading one Redis hash`, [
    ['requests per round', `${fmt(TOTAL)}, best of ${ROUNDS}`],
    ...cases.map(([name]): [string, string] => {
      const rate = best.get(name)!;
      return [name, `${fmt(rate)} req/s (${fmt(rate / baseline, 2)} of the bare route)`];
    }),
  ]);

  await pool.close();
  await barePool.close();
  await api.stop();
  await bare.stop();
  await redis.stop();
  return { ratio: best.get('GET /v1/jobs/:id')! / baseline };
}
