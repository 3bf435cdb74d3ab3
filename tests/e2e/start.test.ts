import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testRedisUrl, uniquePrefix, waitFor } from '@recast/core/testing';
import { freePort, privatePostgresAvailable } from '@recast/core/testing/servers';
import { afterEach, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const KEY = 'rk_local_dev_admin_key_0000';
const auth = { authorization: `Bearer ${KEY}` };

let running: ChildProcess | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await stop(running);
  running = undefined;
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function stop(child: ChildProcess | undefined) {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGINT');
  await exited;
}

/** `pnpm start` as a user runs it (no DATABASE_URL): the embedded database, the emulator, the API, a worker. */
async function startRecast(env: Record<string, string>) {
  const port = await freePort();
  const emulatorPort = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    cwd: root,
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'DATABASE_URL')),
      REDIS_URL: testRedisUrl(),
      PORT: String(port),
      EMULATOR_PORT: String(emulatorPort),
      EMULATOR_STEP_MS: '50',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  running = child;
  let said = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    said += chunk.toString();
  });
  const api = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`pnpm start exited: ${said}`);
      const res = await fetch(`${api}/readyz`).catch(() => undefined);
      if (!res?.ok) return undefined;
      const body = (await res.json()) as { database: string };
      return body.database === 'ok' ? body : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 250, what: 'pnpm start ready with its database' },
  );
  return { api, emulator: `http://127.0.0.1:${emulatorPort}`, child, said: () => said };
}

const modes = [
  { mode: 'pglite', available: true },
  { mode: 'postgres', available: privatePostgresAvailable() },
] as const;

describe('pnpm start without DATABASE_URL', () => {
  for (const { mode, available } of modes) {
    it.skipIf(!available)(
      `runs on an embedded ${mode}: jobs are archived there and are still there after a restart`,
      { timeout: 180_000 },
      async () => {
        const dataDir = await mkdtemp(join(tmpdir(), `recast-start-${mode}-`));
        dirs.push(dataDir);
        // The private server runs as the `postgres` user when this runs as root: it must reach it.
        await chmod(dataDir, 0o755);
        const env = {
          RECAST_EMBEDDED_DATABASE: mode,
          RECAST_DATA_DIR: dataDir,
          REDIS_PREFIX: uniquePrefix('start'),
        };
        const first = await startRecast(env);
        expect(first.said()).toContain(mode === 'pglite' ? 'embedded PGlite' : 'private PostgreSQL');
        expect(first.said()).toContain(dataDir);
        const res = await fetch(`${first.api}/v1/jobs`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({
            video: `${first.emulator}/fixtures/clip-2s-faststart.mp4`,
            images: [`${first.emulator}/fixtures/person-a.png`],
          }),
        });
        expect(res.status).toBe(202);
        const { id } = (await res.json()) as { id: string };
        const items = await waitFor(
          async () => {
            const text = await (await fetch(`${first.api}/v1/costs/items`, { headers: auth })).text();
            const lines = text.trim()
              ? text
                  .trim()
                  .split('\n')
                  .map((l) => JSON.parse(l))
              : [];
            return lines.some((l) => l.job_id === id && l.archived === true) ? lines : undefined;
          },
          { timeoutMs: 60_000, intervalMs: 250, what: 'the charge archived in the embedded database' },
        );
        expect(items.find((l) => l.job_id === id)).toMatchObject({ billed_ms: 2000, micro_usd: 60_000 });
        await stop(first.child);

        // Its data is kept between runs: the same books after a restart, read from the database
        // alone (another key prefix: this Redis holds nothing of the first run for it).
        const second = await startRecast({ ...env, REDIS_PREFIX: uniquePrefix('start') });
        const text = await (await fetch(`${second.api}/v1/costs/items`, { headers: auth })).text();
        expect(text).toContain(id);
        const costs = (await (await fetch(`${second.api}/v1/costs`, { headers: auth })).json()) as {
          source: string;
          total: { micro_usd: number };
        };
        expect(costs.source).toBe('history');
        expect(costs.total.micro_usd).toBe(60_000);
      },
    );
  }
});
