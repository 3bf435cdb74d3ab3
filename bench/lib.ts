import { createLogger, createRedis } from '@recast/core/infra';
import { startPrivateRedis } from '@recast/core/testing/servers';
import type { Redis } from 'ioredis';

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
