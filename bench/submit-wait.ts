/**
 * What "acknowledged means replicated" costs on the submit path: POST /v1/jobs against a primary
 * with one replica, with REDIS_WAIT_REPLICAS=0 (answered once the primary has the job) and =1
 * (answered once the replica has it too: a WAIT after the write). Two API processes on the same
 * primary, rounds alternated, best of each kept; the ratio is what counts.
 */
import { SentinelGroup } from '@recast/core/testing/servers';
import { Pool } from 'undici';
import { BENCH_AUTH, startApiProcess } from './api-process.js';
import { fmt, measure, report } from './lib.js';

const TOTAL = Number(process.env.BENCH_SUBMIT_TOTAL ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const ROUNDS = 3;

const body = {
  video: 'https://cdn.example.com/source.mp4',
  images: ['https://cdn.example.com/person-a.png'],
  resolution: '720p',
  duration_seconds: 5,
};

export async function benchSubmitWait(): Promise<{ ratio: number }> {
  // A primary and a replica on this machine (the sentinels are not used: the API goes straight
  // to the primary, so only the WAIT differs between the two processes).
  const group = await SentinelGroup.start();
  const primary = (await group.primary())!;
  const prefix = `bench-wait-${Date.now().toString(36)}`;
  const common = { REDIS_URL: primary.url, WEBHOOK_SECRET: 'bench-secret-0123456789abcdef' };
  const noWait = await startApiProcess({ ...common, REDIS_PREFIX: `${prefix}-0`, REDIS_WAIT_REPLICAS: '0' });
  const withWait = await startApiProcess({
    ...common,
    REDIS_PREFIX: `${prefix}-1`,
    REDIS_WAIT_REPLICAS: '1',
    REDIS_WAIT_TIMEOUT_MS: '5000',
  });
  const pools = [noWait, withWait].map(
    (api) => new Pool(api.url, { connections: CONCURRENCY, pipelining: 1 }),
  );
  const submit = (pool: Pool) => async () => {
    const res = await pool.request({
      method: 'POST',
      path: '/v1/jobs',
      headers: { 'content-type': 'application/json', ...BENCH_AUTH },
      body: JSON.stringify(body),
    });
    await res.body.dump();
    if (res.statusCode !== 202) throw new Error(`POST /v1/jobs answered ${res.statusCode}`);
  };
  const [zero, one] = pools.map(submit) as [() => Promise<void>, () => Promise<void>];

  // Warm both (JIT, connections, Lua script cache), then alternate rounds and keep the best.
  await measure(300, CONCURRENCY, zero);
  await measure(300, CONCURRENCY, one);
  let bestZero = 0;
  let bestOne = 0;
  for (let round = 0; round < ROUNDS; round++) {
    bestZero = Math.max(bestZero, (await measure(TOTAL, CONCURRENCY, zero)).perSecond);
    bestOne = Math.max(bestOne, (await measure(TOTAL, CONCURRENCY, one)).perSecond);
  }
  // One at a time: the latency a lone client sees (no other write to share a WAIT with).
  const serial = async (op: () => Promise<void>) => {
    const rate = await measure(300, 1, op);
    return rate.ms / rate.ops;
  };
  const serialZero = await serial(zero);
  const serialOne = await serial(one);
  const ratio = bestOne / bestZero;
  report('submit-wait: POST /v1/jobs, REDIS_WAIT_REPLICAS=1 vs 0 (primary + one replica)', [
    ['requests per round', `${fmt(TOTAL)} at concurrency ${CONCURRENCY}, best of ${ROUNDS}`],
    ['REDIS_WAIT_REPLICAS=0', `${fmt(bestZero)} req/s, ${fmt(serialZero, 2)} ms each one at a time`],
    ['REDIS_WAIT_REPLICAS=1', `${fmt(bestOne)} req/s, ${fmt(serialOne, 2)} ms each one at a time`],
    ['ratio (1 / 0)', fmt(ratio, 2)],
    ['added latency, one at a time', `${fmt(serialOne - serialZero, 2)} ms`],
  ]);

  for (const pool of pools) await pool.close();
  await noWait.stop();
  await withWait.stop();
  await group.stop();
  return { ratio };
}
