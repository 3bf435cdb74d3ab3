import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { RedisTarget } from '../infra/redis.js';
import { freePort, redisServerBinary } from './private-redis.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One redis-server process (a data node or a sentinel) that a test can kill, pause and restart. */
export class RedisNode {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly port: number,
    readonly dir: string,
    readonly logPath: string,
    private readonly args: (node: RedisNode) => string[],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Start (again, on the same port and directory); `extra` arguments for this start only. */
  async start(extra: string[] = []): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    const binary = redisServerBinary();
    if (!binary) throw new Error('redis-server is not installed');
    await mkdir(this.dir, { recursive: true });
    const log = openSync(this.logPath, 'a');
    writeSync(log, `\n=== starting ${this.name} at ${new Date().toISOString()} ===\n`);
    const child = spawn(binary, [...this.args(this), ...extra], { stdio: ['ignore', log, log] });
    closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
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
        // A data node answers LOADING until its AOF is read; a sentinel answers PING.
        await probe.ping();
        break;
      } catch (err) {
        probe.disconnect();
        if (child.exitCode !== null || Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new Error(
            `${this.name} did not come up on ${this.port}: ${(err as Error).message}; see ${this.logPath}`,
          );
        }
        await sleep(50);
      }
    }
    probe.disconnect();
  }

  /** SIGKILL: a crash (nothing flushed); SIGTERM: a clean stop. A paused node is woken first. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    if (!this.running) return;
    this.child!.kill(signal);
    if (signal === 'SIGTERM') this.child!.kill('SIGCONT');
    const timedOut = await Promise.race([this.exited.then(() => false), sleep(15_000).then(() => true)]);
    if (timedOut) {
      this.child!.kill('SIGKILL');
      await this.exited;
    }
  }

  /** SIGSTOP: the process holds its sockets open and answers nothing (a hung or partitioned node). */
  pause(): void {
    if (this.running) this.child!.kill('SIGSTOP');
  }

  resume(): void {
    if (this.running) this.child!.kill('SIGCONT');
  }

  /** A short-lived client of this node (the caller disconnects it). */
  client(): Redis {
    const client = new Redis(this.url, {
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
      connectTimeout: 2_000,
    });
    client.on('error', () => {});
    return client;
  }
}

export interface SentinelGroupOptions {
  /** Where data, configs and logs go; a fresh temp dir (removed by stop) by default. */
  dir?: string;
  /** The monitored primary's name. */
  name?: string;
  appendfsync?: 'always' | 'everysec';
  /** Sentinel `down-after-milliseconds`: how long a silent primary takes to be declared down. */
  downAfterMs?: number;
  /** Sentinel `failover-timeout`. */
  failoverTimeoutMs?: number;
}

/**
 * The production shape of Redis on one machine, for tests: a primary, a replica and three
 * sentinels (quorum 2), each its own redis-server process on a free port with its own directory
 * (AOF on, noeviction). Nodes can be SIGKILLed, paused and started again; `promoted()` waits for
 * the sentinels to name a new primary.
 */
export class SentinelGroup {
  private constructor(
    readonly dir: string,
    readonly name: string,
    readonly data: RedisNode[],
    readonly sentinels: RedisNode[],
    private readonly ownDir: boolean,
  ) {}

  static async start(options: SentinelGroupOptions = {}): Promise<SentinelGroup> {
    const ownDir = !options.dir;
    const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'recast-sentinel-')));
    const name = options.name ?? 'recast';
    const dataArgs = (node: RedisNode) => [
      '--port',
      String(node.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      node.dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      options.appendfsync ?? 'everysec',
      '--appenddirname',
      'appendonly',
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
      '--protected-mode',
      'no',
      // A replica that is (re)syncing answers MASTERDOWN rather than serve its old data: a node
      // restarted after a failover holds the writes the new primary never had until it resyncs.
      '--replica-serve-stale-data',
      'no',
    ];
    const data: RedisNode[] = [];
    for (const role of ['redis-a', 'redis-b']) {
      const port = await freePort();
      data.push(new RedisNode(role, port, join(dir, role), join(dir, `${role}.log`), dataArgs));
    }
    const [primary, replica] = data as [RedisNode, RedisNode];
    const sentinels: RedisNode[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const nodeDir = join(dir, `sentinel-${i}`);
      const conf = join(nodeDir, 'sentinel.conf');
      sentinels.push(
        new RedisNode(`sentinel-${i}`, port, nodeDir, join(dir, `sentinel-${i}.log`), () => [
          conf,
          '--sentinel',
        ]),
      );
    }
    const group = new SentinelGroup(dir, name, data, sentinels, ownDir);
    try {
      await primary.start();
      await replica.start(['--replicaof', '127.0.0.1', String(primary.port)]);
      await group.waitInSync(replica, 30_000);
      for (const sentinel of sentinels) {
        await mkdir(sentinel.dir, { recursive: true });
        // Sentinel rewrites its own config file (what it learns of replicas and other sentinels).
        await writeFile(
          join(sentinel.dir, 'sentinel.conf'),
          [
            `port ${sentinel.port}`,
            'bind 127.0.0.1',
            'protected-mode no',
            `dir ${sentinel.dir}`,
            `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
            `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1_000}`,
            `sentinel failover-timeout ${name} ${options.failoverTimeoutMs ?? 10_000}`,
            `sentinel parallel-syncs ${name} 1`,
            '',
          ].join('\n'),
        );
        await sentinel.start();
      }
      await group.waitDiscovered(30_000);
    } catch (err) {
      await group.stop();
      throw err;
    }
    return group;
  }

  /** What the apps' REDIS_SENTINELS and REDIS_SENTINEL_NAME say for this group. */
  env(): Record<string, string> {
    return {
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_SENTINELS: this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      REDIS_SENTINEL_NAME: this.name,
    };
  }

  target(): RedisTarget {
    return {
      url: 'redis://127.0.0.1:6379',
      sentinels: this.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
      sentinelName: this.name,
    };
  }

  /** The data node the sentinels name as primary now (the first sentinel that answers). */
  async primary(): Promise<RedisNode | undefined> {
    for (const sentinel of this.sentinels) {
      if (!sentinel.running) continue;
      const client = sentinel.client();
      try {
        const reply = (await client.call('SENTINEL', 'get-master-addr-by-name', this.name)) as
          | string[]
          | null;
        const port = Number(reply?.[1]);
        return this.data.find((n) => n.port === port);
      } catch {
        // this sentinel is not answering: ask the next
      } finally {
        client.disconnect();
      }
    }
    return undefined;
  }

  /** The data node that is not `node`. */
  other(node: RedisNode): RedisNode {
    return this.data.find((n) => n !== node)!;
  }

  /** The primary every running sentinel names, when they all name the same one. */
  async agreedPrimary(): Promise<RedisNode | undefined> {
    const named = new Set<number>();
    for (const sentinel of this.sentinels) {
      if (!sentinel.running) continue;
      const client = sentinel.client();
      try {
        const reply = (await client.call('SENTINEL', 'get-master-addr-by-name', this.name)) as
          | string[]
          | null;
        named.add(Number(reply?.[1]));
      } catch {
        return undefined;
      } finally {
        client.disconnect();
      }
    }
    if (named.size !== 1) return undefined;
    const port = [...named][0];
    return this.data.find((n) => n.port === port);
  }

  /**
   * Wait until every sentinel names a primary other than `old`, and it answers as a primary. All
   * of them, not the first: a sentinel that has not heard of the promotion yet may still start a
   * failover of its own once the old primary is back.
   */
  async promoted(old: RedisNode, timeoutMs = 60_000): Promise<RedisNode> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const now = await this.agreedPrimary();
      if (now && now !== old && (await this.role(now)) === 'master') return now;
      if (Date.now() > deadline) throw new Error(`no replica was promoted in ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  /**
   * Wait until the group is whole again: the sentinels agree on a primary, and the other data node
   * is its replica, in sync. Whichever node that is: under load the sentinels may fail over more
   * than once, which the system must live through as well.
   */
  async settled(timeoutMs = 60_000): Promise<RedisNode> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const primary = await this.agreedPrimary();
      if (primary && (await this.role(primary)) === 'master') {
        const replica = this.other(primary);
        const client = replica.client();
        const info = await client.info('replication').catch(() => '');
        client.disconnect();
        if (
          info.includes(`master_port:${primary.port}`) &&
          /master_link_status:up/.test(info) &&
          !/master_sync_in_progress:1/.test(info)
        )
          return primary;
      }
      if (Date.now() > deadline) throw new Error(`the group did not settle in ${timeoutMs} ms`);
      await sleep(200);
    }
  }

  /** Start a stopped data node again, as a replica of the current primary (what an operator does). */
  async rejoin(node: RedisNode): Promise<void> {
    const primary = await this.primary();
    if (!primary || primary === node) throw new Error(`no other primary for ${node.name} to follow`);
    await node.start(['--replicaof', '127.0.0.1', String(primary.port)]);
  }

  async role(node: RedisNode): Promise<string | undefined> {
    const client = node.client();
    try {
      const reply = (await client.call('ROLE')) as unknown[];
      return String(reply[0]);
    } catch {
      return undefined;
    } finally {
      client.disconnect();
    }
  }

  /** Wait until `replica` has its link to the primary up and has caught up with it. */
  async waitInSync(replica: RedisNode, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const client = replica.client();
      try {
        const info = await client.info('replication');
        if (/master_link_status:up/.test(info) && !/master_sync_in_progress:1/.test(info)) return;
      } catch {
        // loading, or not up yet
      } finally {
        client.disconnect();
      }
      if (Date.now() > deadline) throw new Error(`${replica.name} did not sync in ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  /** Wait until every sentinel knows the replica and the two other sentinels (they say hello every 2 s). */
  private async waitDiscovered(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let ready = 0;
      for (const sentinel of this.sentinels) {
        const client = sentinel.client();
        try {
          const replicas = (await client.call('SENTINEL', 'replicas', this.name)) as unknown[];
          const peers = (await client.call('SENTINEL', 'sentinels', this.name)) as unknown[];
          if (replicas.length >= 1 && peers.length >= this.sentinels.length - 1) ready++;
        } catch {
          // not up yet
        } finally {
          client.disconnect();
        }
      }
      if (ready === this.sentinels.length) return;
      if (Date.now() > deadline) throw new Error(`sentinels did not discover each other in ${timeoutMs} ms`);
      await sleep(200);
    }
  }

  async stop(): Promise<void> {
    for (const node of [...this.sentinels, ...this.data]) await node.stop('SIGTERM').catch(() => undefined);
    if (this.ownDir) await rm(this.dir, { recursive: true, force: true });
  }
}
