import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';

import { freePort, redisServerBinary } from '@recast/core/testing/servers';
import { Redis } from 'ioredis';

export interface ChaosRedisOptions {
  /** Data directory (AOF lives here); kept across restarts. */
  dir: string;
  /** Where redis-server's own log goes (appended across restarts). */
  logPath: string;
  /** `always`: every acknowledged write is on disk, so even a SIGKILL loses nothing acknowledged. */
  appendfsync?: 'always' | 'everysec';
  port?: number;
}

/**
 * A private `redis-server` that a chaos scenario can stop (gracefully or not) and start again on
 * the same port and data directory, the way an operator or an orchestrator restarts Redis.
 * `startPrivateRedis` from core takes a port and a dir too, but its AOF fsync policy is fixed and
 * its stop() always escalates to SIGKILL after a grace period; here the scenario picks the signal.
 */
export class ChaosRedis {
  readonly port: number;
  readonly url: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  restarts = 0;

  private constructor(
    private readonly options: ChaosRedisOptions,
    port: number,
  ) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
  }

  static async start(options: ChaosRedisOptions): Promise<ChaosRedis> {
    await mkdir(options.dir, { recursive: true });
    const redis = new ChaosRedis(options, options.port ?? (await freePort()));
    await redis.start();
    return redis;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    if (this.running) throw new Error('redis-server is already running');
    const binary = redisServerBinary();
    if (!binary) throw new Error('redis-server is not installed');
    const log = openSync(this.options.logPath, 'a');
    writeSync(log, `\n=== chaos: starting redis-server at ${new Date().toISOString()} ===\n`);
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.options.dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      this.options.appendfsync ?? 'everysec',
      '--appenddirname',
      'appendonly',
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
      '--protected-mode',
      'no',
    ];
    const child = spawn(binary, args, { stdio: ['ignore', log, log] });
    closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    // Answering PING is not enough after a restart: Redis answers LOADING until the AOF is read.
    const probe = new Redis(this.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on('error', () => {});
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await probe.connect();
        await probe.dbsize();
        break;
      } catch (err) {
        if (child.exitCode !== null || Date.now() > deadline) {
          probe.disconnect();
          child.kill('SIGKILL');
          throw new Error(
            `redis-server did not come up on port ${this.port} (${(err as Error).message}); see ${this.options.logPath}`,
          );
        }
        probe.disconnect();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    probe.disconnect();
  }

  /** SIGTERM: Redis flushes and fsyncs the AOF before it exits. SIGKILL: a crash. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    if (!this.running) return;
    this.child!.kill(signal);
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), 15_000)),
    ]);
    if (timedOut) {
      this.child!.kill('SIGKILL');
      await this.exited;
    }
  }

  /** Stop, stay down for `downMs`, start again on the same port and data directory. */
  async restart(signal: 'SIGTERM' | 'SIGKILL', downMs: number): Promise<{ downAt: number; upAt: number }> {
    await this.stop(signal);
    const downAt = Date.now();
    await new Promise((r) => setTimeout(r, downMs));
    await this.start();
    this.restarts++;
    return { downAt, upAt: Date.now() };
  }
}
