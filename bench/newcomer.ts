/**
 * A newcomer's wait behind a backlog, through the whole system (the API and a worker as processes,
 * the emulator as the provider, limiting runs as the provider does): tenant `big` uploads a
 * 1,500-row manifest, and 2 s later tenant `small` submits 10 jobs. How long until the newcomer's
 * first job is sent (its `submitting` move), in seconds and in pace intervals (window / limit),
 * with the submits paced (PROVIDER_SUBMIT_BURST, the default) and, as the baseline of the same
 * run, without pacing (the whole window's submits in one burst, then nothing until it slides).
 * The window is 10 s for 100 submits here (the provider's minute, six times faster): the figures
 * at the provider's own window are six times these.
 */
import { buildEmulator } from '@recast/emulator';
import { Pool } from 'undici';
import { BENCH_AUTH, startApiProcess } from './api-process.js';
import { benchRedis, fmt, report, sharedBenchDatabase } from './lib.js';
import { startWorkerProcess } from './worker-process.js';

const WINDOW_MS = 10_000;
const LIMIT = 100;
const BIG_ROWS = 1_500;
const SMALL_JOBS = 10;
const SECRET = 'bench-secret-0123456789abcdef';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Wait {
  /** From the newcomer's first submit to its first job's `submitting`, seconds. */
  firstS: number;
  /** ... to the last of its 10 jobs' `submitting`, seconds. */
  lastS: number;
}

async function newcomerWait(burst: number): Promise<Wait> {
  const redisServer = await benchRedis();
  const emulator = await buildEmulator({
    apiKey: 'inf_bench',
    stepMs: 50,
    seed: 9,
    rateLimits: { run: { limit: LIMIT, windowMs: WINDOW_MS }, get: false, upload: false },
  });
  const emulatorUrl = await emulator.listen({ port: 0, host: '127.0.0.1' });
  const prefix = `bench-newcomer-${burst}-${Date.now().toString(36)}`;
  const common = {
    REDIS_URL: redisServer.url,
    REDIS_PREFIX: prefix,
    WEBHOOK_SECRET: SECRET,
    DATABASE_URL: (await sharedBenchDatabase()).url,
  };
  const api = await startApiProcess({ ...common, SSRF_ALLOW_HOSTS: new URL(emulatorUrl).host });
  const worker = await startWorkerProcess({
    ...common,
    INFERENCE_API_URL: emulatorUrl,
    INFERENCE_API_KEY: 'inf_bench',
    PUBLIC_URL: api.url,
    SSRF_ALLOW_HOSTS: new URL(emulatorUrl).host,
    PROVIDER_SUBMITS_PER_WINDOW: String(LIMIT),
    PROVIDER_RATE_WINDOW_MS: String(WINDOW_MS),
    PROVIDER_SUBMIT_BURST: String(burst),
    PROVIDER_MAX_IN_FLIGHT: '0',
    PROVIDER_READS_PER_WINDOW: '0',
    AUDIT_INTERVAL_MS: '0',
    ARCHIVE_INTERVAL_MS: '3600000',
  });
  const pool = new Pool(api.url, { connections: 8 });
  try {
    const row = (i: number) => ({
      custom_id: `big-${i}`,
      video: `${emulatorUrl}/fixtures/clip-2s-faststart.mp4`,
      images: [`${emulatorUrl}/fixtures/person-a.png`],
      duration_seconds: 2,
    });
    const manifest = `${Array.from({ length: BIG_ROWS }, (_, i) => JSON.stringify(row(i))).join('\n')}\n`;
    const big = await pool.request({
      method: 'POST',
      path: '/v1/batches?max_cost_usd=1000',
      headers: { ...BENCH_AUTH, 'x-tenant': 'big', 'content-type': 'application/x-ndjson' },
      body: manifest,
    });
    if (big.statusCode !== 202)
      throw new Error(`manifest answered ${big.statusCode}: ${await big.body.text()}`);
    await big.body.dump();
    await sleep(2_000);
    const ids: string[] = [];
    const asked = Date.now();
    for (let i = 0; i < SMALL_JOBS; i++) {
      const res = await pool.request({
        method: 'POST',
        path: '/v1/jobs',
        headers: { ...BENCH_AUTH, 'x-tenant': 'small', 'content-type': 'application/json' },
        body: JSON.stringify({ ...row(i), custom_id: undefined }),
      });
      if (res.statusCode !== 202) throw new Error(`submit answered ${res.statusCode}`);
      ids.push(((await res.body.json()) as { id: string }).id);
    }
    // Each job's `submitting` move, from its timeline.
    const sentAt = new Map<string, number>();
    for (const deadline = Date.now() + 4 * WINDOW_MS; sentAt.size < ids.length && Date.now() < deadline; ) {
      for (const id of ids) {
        if (sentAt.has(id)) continue;
        const res = await pool.request({
          method: 'GET',
          path: `/v1/jobs/${id}/timeline`,
          headers: BENCH_AUTH,
        });
        const t = (await res.body.json()) as { states?: { state: string; at: string }[] };
        const sent = t.states?.find((s) => s.state === 'submitting');
        if (sent) sentAt.set(id, Date.parse(sent.at));
      }
      await sleep(100);
    }
    if (sentAt.size < ids.length) throw new Error(`only ${sentAt.size} of the newcomer's jobs were sent`);
    const first = Math.min(...sentAt.values());
    const last = Math.max(...sentAt.values());
    return { firstS: (first - asked) / 1000, lastS: (last - asked) / 1000 };
  } finally {
    await pool.close();
    await worker.stop();
    await api.stop();
    await emulator.close();
    await redisServer.stop();
  }
}

export async function benchNewcomer(): Promise<{ paced: Wait; unpaced: Wait }> {
  const interval = WINDOW_MS / LIMIT / 1000;
  const unpaced = await newcomerWait(0);
  const paced = await newcomerWait(10);
  const row = (w: Wait) =>
    `first job ${fmt(w.firstS, 2)} s (${fmt(w.firstS / interval, 1)} intervals), all 10 ${fmt(w.lastS, 2)} s`;
  report(`newcomer's wait behind a 1,500-row backlog (${LIMIT} submits / ${WINDOW_MS / 1000} s window)`, [
    ['paced (burst 10)', row(paced)],
    ['baseline: unpaced (burst 0)', row(unpaced)],
    ['ratio paced / unpaced (first job)', fmt(paced.firstS / unpaced.firstS, 3)],
  ]);
  return { paced, unpaced };
}
