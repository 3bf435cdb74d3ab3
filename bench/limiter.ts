/**
 * The provider gate's accuracy: 8 workers, each with its own Redis connection and ProviderGate,
 * submit as fast as the gate lets them to a local HTTP server standing in for the provider. The
 * server stamps each request when it arrives (what a provider counts); no sliding window of the
 * configured length may ever hold more than the limit. Next to it, the baseline measured for the
 * same run: the ideal, limit × seconds, and how close to it the gate runs (utilisation).
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKeys } from '@recast/core/infra';
import { ProviderGate, type ProviderLimits, ProviderQuota, type QuotaGroup } from '@recast/core/provider';
import { Pool } from 'undici';
import { benchConnection, benchRedis, fmt, report } from './lib.js';

const SECONDS = Number(process.env.BENCH_LIMITER_SECONDS ?? 30);
const WORKERS = 8;
const LIMITS: ProviderLimits = {
  submitsPerWindow: 50,
  windowMs: 1000,
  maxInFlight: 0,
  pendingHoldMs: 30_000,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface WindowStats {
  /** Most stamps in any half-open window [t, t + windowMs). */
  max: number;
  /** Narrowest span of limit + 1 consecutive stamps: >= windowMs means the limit was never passed. */
  narrowest: number;
  /** Mean span of limit + 1 consecutive stamps: the steady-state cycle (windowMs at best). */
  meanSpan: number;
}

/** Two-pointer sweep over sorted stamps. */
function windowStats(stamps: number[], windowMs: number, limit: number): WindowStats {
  const t = [...stamps].sort((a, b) => a - b);
  let max = 0;
  let narrowest = Number.POSITIVE_INFINITY;
  let spans = 0;
  let i = 0;
  for (let j = 0; j < t.length; j++) {
    while (t[j]! - t[i]! >= windowMs) i++;
    max = Math.max(max, j - i + 1);
    if (j >= limit) {
      narrowest = Math.min(narrowest, t[j]! - t[j - limit]!);
      spans += t[j]! - t[j - limit]!;
    }
  }
  return { max, narrowest, meanSpan: t.length > limit ? spans / (t.length - limit) : Number.NaN };
}

export async function benchLimiter(): Promise<{ utilisation: number; maxInWindow: number }> {
  const redis = await benchRedis();
  const keys = createKeys(`bench-${Date.now().toString(36)}`);

  const { arrivals, pool, close } = await standIn();
  const connections = Array.from({ length: WORKERS }, () => benchConnection(redis.url));
  const admissions: number[] = [];
  const refusals = { rate: 0, paused: 0, in_flight: 0 };
  let requestMs = 0;

  try {
    await Promise.all(connections.map((c) => c.ping()));
    const started = performance.now();
    const deadline = started + SECONDS * 1000;
    await Promise.all(
      connections.map(async (connection, w) => {
        const gate = new ProviderGate(connection, keys, LIMITS);
        for (let n = 0; ; n++) {
          const jobId = `w${w}-${n}`;
          for (;;) {
            if (performance.now() >= deadline) return;
            const admission = await gate.admit(jobId);
            if (admission.ok) {
              admissions.push(performance.now());
              const sent = performance.now();
              try {
                const res = await pool.request({
                  method: 'POST',
                  path: '/apps/run',
                  headers: { 'content-type': 'application/json' },
                  body: JSON.stringify({ jobId }),
                });
                await res.body.dump();
                if (res.statusCode !== 200) throw new Error(`provider stand-in answered ${res.statusCode}`);
              } finally {
                requestMs += performance.now() - sent;
                await gate.submitted(admission.token);
              }
              break;
            }
            refusals[admission.reason]++;
            await sleep(Math.min(admission.waitMs, 50));
          }
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;

    if (arrivals.length !== admissions.length) {
      throw new Error(
        `provider stand-in saw ${arrivals.length} requests for ${admissions.length} admissions`,
      );
    }
    const limit = LIMITS.submitsPerWindow;
    const byArrival = windowStats(arrivals, LIMITS.windowMs, limit);
    const byAdmission = windowStats(admissions, LIMITS.windowMs, limit);
    const total = arrivals.length;
    const ideal = (limit * 1000 * SECONDS) / LIMITS.windowMs;
    const utilisation = total / ideal;
    const over = (s: WindowStats) => (s.max > limit ? `  ** OVER THE LIMIT (${limit}) **` : '');

    report(`limiter: ProviderGate ${limit} submits / ${fmt(LIMITS.windowMs)} ms, ${WORKERS} workers`, [
      ['run', `${fmt(SECONDS)} s of admissions (${fmt(elapsed, 1)} s until the last request ended)`],
      ['workers', `${WORKERS}, each with its own Redis connection and ProviderGate, same keys`],
      ['submits (provider arrivals)', fmt(total)],
      ['observed rate', `${fmt(total / SECONDS, 2)} submits/s`],
      ['ideal: limit x seconds', `${fmt(ideal)} (${fmt(ideal / SECONDS, 2)} submits/s)`],
      ['utilisation: observed / ideal', fmt(utilisation, 3)],
      ['limit', `${limit} per sliding ${fmt(LIMITS.windowMs)} ms window`],
      ['max in any window, by arrival', `${byArrival.max}${over(byArrival)}`],
      ['max in any window, by admission', `${byAdmission.max}${over(byAdmission)}`],
      [
        `narrowest ${limit + 1} in a row, by arrival`,
        `${fmt(byArrival.narrowest, 1)} ms (>= ${fmt(LIMITS.windowMs)} means never over)`,
      ],
      [`narrowest ${limit + 1} in a row, by admission`, `${fmt(byAdmission.narrowest, 1)} ms`],
      [
        `mean ${limit + 1} in a row, by arrival`,
        `${fmt(byArrival.meanSpan, 1)} ms: steady state ${fmt((limit * 1000) / byArrival.meanSpan, 2)} submits/s`,
      ],
      ['steady-state utilisation', fmt(LIMITS.windowMs / byArrival.meanSpan, 3)],
      ['mean provider request (client side)', `${fmt(requestMs / Math.max(1, total), 1)} ms`],
      ['refusals', `rate ${fmt(refusals.rate)}, paused ${refusals.paused}, in_flight ${refusals.in_flight}`],
    ]);

    if (byArrival.max > limit || byAdmission.max > limit) {
      throw new Error(
        `limiter exceeded its limit of ${limit} per ${LIMITS.windowMs} ms: ${byArrival.max} by provider arrival, ${byAdmission.max} by admission`,
      );
    }
    // The other two quotas, the same way: task reads and uploads (ProviderQuota, take-2.lua).
    const quotas = [];
    for (const [group, perWindow] of [
      ['reads', 80],
      ['uploads', 20],
    ] as const) {
      quotas.push(await benchQuota(connections, keys, group, perWindow));
    }
    return { utilisation, maxInWindow: Math.max(byArrival.max, ...quotas.map((q) => q.maxInWindow)) };
  } finally {
    await close();
    await Promise.all(connections.map((c) => c.quit()));
    await redis.stop();
  }
}

/** The stand-in provider: stamps a request on arrival, answers after 5-40 ms. */
async function standIn() {
  const arrivals: number[] = [];
  const server = createServer((req, res) => {
    arrivals.push(performance.now());
    req.resume();
    req.once('end', () => {
      setTimeout(
        () => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"taskId":"t"}');
        },
        5 + Math.random() * 35,
      );
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: WORKERS, pipelining: 1 });
  return {
    arrivals,
    pool,
    async close() {
      await pool.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * One of the other quotas under the same load: every process takes a turn, sends, ends the turn.
 * Reported like the gate: the most arrivals in any window (never above the limit) and utilisation.
 */
async function benchQuota(
  connections: ReturnType<typeof benchConnection>[],
  keys: ReturnType<typeof createKeys>,
  group: QuotaGroup,
  perWindow: number,
): Promise<{ maxInWindow: number }> {
  const seconds = Math.max(5, Math.round(SECONDS / 3));
  const limits = { perWindow, windowMs: 1000, pendingHoldMs: 30_000, maxWaitMs: 60_000 };
  const { arrivals, pool, close } = await standIn();
  try {
    const started = performance.now();
    const deadline = started + seconds * 1000;
    await Promise.all(
      connections.map(async (connection) => {
        const quota = new ProviderQuota(connection, keys, group, limits);
        while (performance.now() < deadline) {
          const turn = await quota.take();
          if (performance.now() >= deadline) {
            await turn?.end(undefined);
            return;
          }
          try {
            const res = await pool.request({ method: 'GET', path: `/${group}` });
            await res.body.dump();
          } finally {
            await turn?.end(undefined);
          }
        }
      }),
    );
    const stats = windowStats(arrivals, limits.windowMs, perWindow);
    const ideal = (perWindow * 1000 * seconds) / limits.windowMs;
    report(`limiter: ProviderQuota ${group}, ${perWindow} / ${fmt(limits.windowMs)} ms, ${WORKERS} workers`, [
      ['run', `${fmt(seconds)} s`],
      ['requests (provider arrivals)', fmt(arrivals.length)],
      ['ideal: limit x seconds', fmt(ideal)],
      ['utilisation: observed / ideal', fmt(arrivals.length / ideal, 3)],
      [
        'max in any window, by arrival',
        `${stats.max}${stats.max > perWindow ? `  ** OVER THE LIMIT (${perWindow}) **` : ''}`,
      ],
      ['steady-state utilisation', fmt(limits.windowMs / stats.meanSpan, 3)],
    ]);
    if (stats.max > perWindow)
      throw new Error(`${group} quota exceeded its limit of ${perWindow}: ${stats.max} in a window`);
    return { maxInWindow: stats.max };
  } finally {
    await close();
  }
}
