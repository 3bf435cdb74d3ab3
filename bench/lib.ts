import { createLogger, createRedis } from '@recast/core/infra';
import { startPrivatePostgres, startPrivateRedis } from '@recast/core/testing/servers';
import type { Redis } from 'ioredis';
import pg from 'pg';

export interface BenchRedis {
  url: string;
  stop(): Promise<void>;
}

/** Benchmarks run on REDIS_URL when set, else on a private redis-server (AOF on, as in production). */
export async function benchRedis(): Promise<BenchRedis> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => {} };
  const server = await startPrivateRedis({ appendonly: true });
  return { url: server.url, stop: () => server.stop() };
}

/** A connection of the benchmarks' own, through the one factory (a worker's: it waits out a reconnect). */
export function benchConnection(url: string, name = 'bench'): Redis {
  return createRedis({ target: url, role: 'worker', logger: createLogger({ level: 'warn', name }), name });
}

export interface Rate {
  ops: number;
  ms: number;
  perSecond: number;
}

/** Run `op` `total` times with at most `concurrency` in flight; returns the rate. */
export async function measure(
  total: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<Rate> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        await op(i);
      }
    }),
  );
  const ms = performance.now() - started;
  return { ops: total, ms, perSecond: (total * 1000) / ms };
}

export function report(title: string, rows: [string, string][]): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`\n== ${title}\n`);
  for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(width)}  ${v}\n`);
}

export const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export interface BenchDatabase {
  /** A fresh, empty database (the processes migrate it as they start). */
  url: string;
  stop(): Promise<void>;
}

/**
 * A PostgreSQL database for a benchmark: a fresh one on DATABASE_URL's server when set, else on
 * the machine's own server (127.0.0.1:5432), else on a private server started for the run.
 */
export async function benchDatabase(): Promise<BenchDatabase> {
  const name = `recast_bench_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  const withDb = (url: string, db: string) => {
    const u = new URL(url);
    u.pathname = `/${db}`;
    return u.toString();
  };
  const tryServer = async (admin: string): Promise<BenchDatabase | undefined> => {
    const client = new pg.Client({ connectionString: admin, connectionTimeoutMillis: 1_500 });
    try {
      await client.connect();
      await client.query(`CREATE DATABASE ${name}`);
    } catch {
      return undefined;
    } finally {
      await client.end().catch(() => undefined);
    }
    return {
      url: withDb(admin, name),
      async stop() {
        const c = new pg.Client({ connectionString: admin });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
        await c.end();
      },
    };
  };
  const found =
    (process.env.DATABASE_URL ? await tryServer(process.env.DATABASE_URL) : undefined) ??
    (await tryServer('postgres://postgres@127.0.0.1:5432/postgres'));
  if (found) return found;
  const server = await startPrivatePostgres();
  const db = await tryServer(server.url);
  if (!db) throw new Error('could not create a database on the private PostgreSQL');
  return { url: db.url, stop: () => server.stop() };
}

let shared: Promise<BenchDatabase> | undefined;
/** One database for the benchmarks that only need the API to have one (nothing is archived). */
export function sharedBenchDatabase(): Promise<BenchDatabase> {
  shared ??= benchDatabase();
  return shared;
}

export function sharedBenchDatabaseIfAny(): Promise<BenchDatabase> | undefined {
  return shared;
}
