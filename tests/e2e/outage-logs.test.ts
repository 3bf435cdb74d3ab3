import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sharedTestDatabaseUrl } from '@recast/core/testing';
import { type PrivateRedis, redisServerBinary, startPrivateRedis } from '@recast/core/testing/servers';
import { afterEach, describe, expect, it } from 'vitest';

// The processes as deployed (their entry files), on a Redis of their own that goes away: every
// line either writes, on stdout or stderr, must still be one JSON object (pino), never a raw
// multi-line stack trace a log pipeline cannot read.

const root = fileURLToPath(new URL('../..', import.meta.url));
const children: ChildProcess[] = [];
let redis: PrivateRedis | undefined;
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await redis?.stop();
  redis = undefined;
});

function start(entry: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const output = { stdout: '', stderr: '' };
  child.stdout?.on('data', (chunk: Buffer) => {
    output.stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output.stderr += chunk.toString();
  });
  return output;
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const notJson = (text: string) =>
  text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .filter((line) => {
      try {
        return typeof JSON.parse(line) !== 'object';
      } catch {
        return true;
      }
    });

describe.skipIf(!redisServerBinary())('during a Redis outage', () => {
  it('the worker and the API write nothing but pino JSON lines', { timeout: 90_000 }, async () => {
    redis = await startPrivateRedis({ appendonly: false });
    const env = {
      REDIS_URL: redis.url,
      DATABASE_URL: await sharedTestDatabaseUrl(),
      REDIS_PREFIX: `outage${Date.now().toString(36)}`,
      WEBHOOK_SECRET: 'outage-webhook-secret-0123456789',
      INFERENCE_API_KEY: 'inf_outage',
      // Nothing answers there: the provider is not what this is about.
      INFERENCE_API_URL: 'http://127.0.0.1:9',
      RECONCILE_INTERVAL_MS: '500',
    };
    const worker = start('apps/worker/src/main.ts', env);
    const api = start('apps/api/src/server.ts', { ...env, PORT: '0' });
    await until(() => worker.stdout.includes('worker started'), 30_000, 'the worker to start');
    await until(() => api.stdout.includes('Server listening'), 30_000, 'the API to start');

    await redis.stop();
    // Long enough for several reconnect attempts of every connection (backoff up to 5 s).
    await until(
      () => (worker.stdout.match(/"source":"console"|redis error/g) ?? []).length >= 3,
      30_000,
      'errors',
    );
    await new Promise((resolve) => setTimeout(resolve, 3_000));

    expect(worker.stdout).toMatch(/"msg":"redis error"/);
    for (const [name, text] of [
      ['worker stdout', worker.stdout],
      ['worker stderr', worker.stderr],
      ['api stdout', api.stdout],
      ['api stderr', api.stderr],
    ] as const) {
      expect(notJson(text), name).toEqual([]);
    }
  });
});
