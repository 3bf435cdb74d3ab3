/**
 * `pnpm start`: the whole system on one machine: Redis (yours, or a private one), PostgreSQL
 * (DATABASE_URL, or an embedded one), the emulator (unless INFERENCE_API_KEY points at the real
 * provider), the API and a worker.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommonConfigShape } from '@recast/core/config';
import { migrateDatabase } from '@recast/core/history';
import {
  createLogger,
  describeRedisTarget,
  type RedisTarget,
  redisOptionsOf,
  redisTargetOf,
} from '@recast/core/infra';
import {
  type PrivatePostgres,
  type PrivateRedis,
  privatePostgresAvailable,
  redisServerBinary,
  startPrivatePostgres,
  startPrivateRedis,
} from '@recast/core/testing/servers';
import { Redis } from 'ioredis';

const root = fileURLToPath(new URL('..', import.meta.url));
const say = (line: string) => process.stderr.write(`[recast start] ${line}\n`);

async function redisAnswers(target: RedisTarget): Promise<boolean> {
  const options = {
    ...redisOptionsOf(target),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1_500,
    sentinelRetryStrategy: () => null,
  };
  // The same options as the apps' factory (one endpoint, or the primary the sentinels name).
  const client = target.sentinels?.length ? new Redis(options) : new Redis(target.url, options);
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

const env: Record<string, string | undefined> = { ...process.env };
env.REDIS_URL ??= 'redis://127.0.0.1:6379';
const target = redisTargetOf({
  REDIS_URL: env.REDIS_URL,
  REDIS_SENTINELS: CommonConfigShape.REDIS_SENTINELS.parse(env.REDIS_SENTINELS ?? ''),
  REDIS_SENTINEL_NAME: env.REDIS_SENTINEL_NAME || 'recast',
  REDIS_SENTINEL_PASSWORD: env.REDIS_SENTINEL_PASSWORD || undefined,
});
let privateRedis: PrivateRedis | undefined;
if (!(await redisAnswers(target))) {
  if (target.sentinels?.length) {
    // A private redis-server is no stand-in for a Sentinel deployment that does not answer.
    say(
      `no primary answers through ${describeRedisTarget(target)}; check REDIS_SENTINELS and REDIS_SENTINEL_NAME.`,
    );
    process.exit(1);
  }
  if (!redisServerBinary()) {
    say(`nothing answers at ${env.REDIS_URL} and no redis-server is installed.`);
    say('Get Redis one of these ways, then run `pnpm start` again:');
    say('  docker compose up -d redis            (the compose service, AOF on, noeviction)');
    say('  sudo apt-get install redis-server     (Debian/Ubuntu; brew install redis on macOS)');
    say('  or point REDIS_URL at a Redis you have.');
    process.exit(1);
  }
  privateRedis = await startPrivateRedis({ appendonly: true });
  env.REDIS_URL = privateRedis.url;
  say(
    `nothing answered at the configured Redis; started a private redis-server at ${privateRedis.url} (AOF on, data in ${privateRedis.dir}, removed on exit)`,
  );
}

/**
 * The history database. Without DATABASE_URL, an embedded one whose data stays in RECAST_DATA_DIR
 * (default `.recast/` in the checkout) from one run to the next:
 * - a private `postgres` server (data in `.recast/postgres`) when PostgreSQL's server binaries are
 *   installed: a real server, the same as production;
 * - else PGlite (PostgreSQL compiled to WebAssembly, data in `.recast/pglite`) served over the
 *   wire protocol by pglite-socket in this process. PGlite is one session underneath that
 *   pglite-socket multiplexes (it keeps a transaction's statements on the client that began it);
 *   the schema is migrated here, once, before the API and the worker start, so their own
 *   migration runs find nothing left to do, and at run time Recast writes single statements.
 * RECAST_EMBEDDED_DATABASE=postgres|pglite picks one.
 */
const embedded: { close(): Promise<void> }[] = [];
if (!env.DATABASE_URL) {
  const dataDir = env.RECAST_DATA_DIR ?? join(root, '.recast');
  const mode = env.RECAST_EMBEDDED_DATABASE ?? (privatePostgresAvailable() ? 'postgres' : 'pglite');
  if (mode === 'postgres') {
    const server: PrivatePostgres = await startPrivatePostgres({
      dir: join(dataDir, 'postgres'),
      fsync: true,
    });
    embedded.push({ close: () => server.stop() });
    env.DATABASE_URL = server.url;
    say(
      `DATABASE_URL not set: started a private PostgreSQL at ${server.url} (data in ${join(dataDir, 'postgres')}, kept between runs)`,
    );
  } else if (mode === 'pglite') {
    const { PGlite } = await import('@electric-sql/pglite');
    const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
    mkdirSync(join(dataDir, 'pglite'), { recursive: true });
    const db = await PGlite.create(join(dataDir, 'pglite'));
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 100 });
    await server.start();
    const address = server.getServerConn();
    embedded.push({
      close: async () => {
        await server.stop();
        await db.close();
      },
    });
    env.DATABASE_URL = `postgres://postgres@${address}/postgres`;
    say(
      `DATABASE_URL not set: serving an embedded PGlite at ${env.DATABASE_URL} (data in ${join(dataDir, 'pglite')}, kept between runs)`,
    );
  } else {
    say(`RECAST_EMBEDDED_DATABASE must be postgres or pglite, not ${mode}`);
    process.exit(1);
  }
  await migrateDatabase(env.DATABASE_URL, createLogger({ level: 'warn', name: 'start' }));
}

if (!env.WEBHOOK_SECRET) {
  env.WEBHOOK_SECRET = randomBytes(24).toString('base64url');
  say('WEBHOOK_SECRET not set: generated one for this run');
}
if (!env.ADMIN_API_KEY && env.AUTH_DISABLED !== 'true') {
  // A fixed key for local runs, so the README's curl lines work as written. Set your own anywhere
  // else: this one is public.
  env.ADMIN_API_KEY = 'rk_local_dev_admin_key_0000';
  say(`ADMIN_API_KEY not set: the local admin key is ${env.ADMIN_API_KEY}`);
}
env.PORT ??= '3000';
env.PUBLIC_URL ??= `http://127.0.0.1:${env.PORT}`;

const services: { name: string; entry: string; env: Record<string, string | undefined> }[] = [];
if (!env.INFERENCE_API_KEY) {
  const port = env.EMULATOR_PORT ?? '4010';
  const key = env.EMULATOR_API_KEY ?? 'inf_local_emulator';
  services.push({
    name: 'emulator',
    entry: 'apps/emulator/src/server.ts',
    env: { ...env, EMULATOR_PORT: port, EMULATOR_API_KEY: key },
  });
  env.INFERENCE_API_URL = `http://127.0.0.1:${port}`;
  env.INFERENCE_API_KEY = key;
  // The emulator serves sample clips on loopback; let the duration probe read them (and only them).
  env.SSRF_ALLOW_HOSTS = [env.SSRF_ALLOW_HOSTS, `127.0.0.1:${port}`].filter(Boolean).join(',');
  say(`INFERENCE_API_KEY not set: using the local emulator at ${env.INFERENCE_API_URL}`);
}
services.push({ name: 'api', entry: 'apps/api/src/server.ts', env });
// Both processes read METRICS_PORT; on one host the worker takes the next port.
const metricsPort = Number(env.METRICS_PORT ?? 0);
const workerEnv = metricsPort > 0 ? { ...env, METRICS_PORT: String(metricsPort + 1) } : env;
services.push({ name: 'worker', entry: 'apps/worker/src/main.ts', env: workerEnv });

const children = new Map<string, ChildProcess>();
let stopping = false;

async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    say('stopping...');
    const exits = [...children.values()].map(
      (child) =>
        new Promise<void>((resolve) =>
          child.exitCode !== null ? resolve() : child.once('exit', () => resolve()),
        ),
    );
    for (const child of children.values()) child.kill('SIGTERM');
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 15_000))]);
    await privateRedis?.stop();
    for (const db of embedded) await db.close().catch(() => undefined);
    process.exit(code);
  }
  return new Promise<never>(() => {});
}

for (const service of services) {
  // Own process group: a terminal's Ctrl-C reaches only this script, which then stops each child
  // once, gracefully (a second signal would make close-with-grace exit at once).
  const child = spawn(process.execPath, ['--import', 'tsx', service.entry], {
    detached: true,
    cwd: root,
    env: service.env,
    stdio: 'inherit',
  });
  children.set(service.name, child);
  child.on('exit', (code, signal) => {
    if (stopping) return;
    say(`${service.name} exited (${signal ?? code}); stopping the rest`);
    void stopAll(code ?? 1);
  });
}
say(`API on http://127.0.0.1:${env.PORT} (Ctrl-C to stop)`);
if (metricsPort > 0) {
  say(`metrics on http://127.0.0.1:${metricsPort}/metrics (api) and :${metricsPort + 1}/metrics (worker)`);
}
process.on('exit', () => {
  for (const child of children.values()) if (child.exitCode === null) child.kill('SIGKILL');
});
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));
