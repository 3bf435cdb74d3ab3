import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '@recast/core/testing/servers';
import { sharedBenchDatabase } from './lib.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The benchmarks' admin key: requests are authenticated as in production. */
export const BENCH_API_KEY = 'rk_bench_admin_key_0123456789';
export const BENCH_AUTH = { authorization: `Bearer ${BENCH_API_KEY}` };

export interface ApiProcess {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * The API as its own process, as deployed: the load generator then does not share an event loop
 * with the server it measures.
 */
export async function startApiProcess(
  env: Record<string, string>,
  entry = 'apps/api/src/server.ts',
): Promise<ApiProcess> {
  const port = await freePort();
  // Every API needs its history database; benchmarks that archive nothing share one.
  const databaseUrl = env.DATABASE_URL ?? (await sharedBenchDatabase()).url;
  const child: ChildProcess = spawn(
    process.execPath,
    [...(process.env.BENCH_API_NODE_ARGS ?? '').split(' ').filter(Boolean), '--import', 'tsx', entry],
    {
      cwd: root,
      env: {
        ...process.env,
        LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
        // The benchmarks' rows name cdn.example.com (with duration hints: nothing is fetched);
        // allow-listed, so the SSRF check of every URL needs no DNS the bench machine may lack.
        SSRF_ALLOW_HOSTS: 'cdn.example.com',
        ADMIN_API_KEY: BENCH_API_KEY,
        // The per-key rate limit is a policy, not a cost: it would only cap what is measured.
        RATE_LIMIT_MAX: '0',
        DATABASE_URL: databaseUrl,
        ...env,
        PORT: String(port),
        HOST: '127.0.0.1',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`API process exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('API process did not become ready in 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pid: child.pid as number,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
