import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Every child of this test process, so a crashed test still leaves no process behind. */
const everyChild = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of everyChild)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

export interface ServiceSpec {
  /** Name of the slot, e.g. `worker-2`; its log is `<logDir>/<name>.log`, appended across respawns. */
  name: string;
  /** Entry file, relative to the repository root, run as in production: `node --import tsx <entry>`. */
  entry: string;
  env: Record<string, string>;
  logDir: string;
  /** A line in the process's log that says it is ready (checked from the spawn on). */
  readyLine?: string;
  /** Or a probe that answers true once the process serves. */
  readyProbe?: () => Promise<boolean>;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the harness asked for it (kill or stop); false is a crash. */
  expected: boolean;
  at: number;
}

/** One running process of a service slot; respawning makes a new one. */
export class Service {
  readonly child: ChildProcess;
  readonly logPath: string;
  readonly exited: Promise<Exit>;
  readonly startedAt = Date.now();
  private expectExit = false;
  private readyAt: number | undefined;
  /** Where this spawn's output starts in the (shared, appended) log file. */
  private readonly logOffset: number;

  constructor(
    readonly spec: ServiceSpec,
    readonly generation: number,
    onExit: (service: Service, exit: Exit) => void,
  ) {
    this.logPath = join(spec.logDir, `${spec.name}.log`);
    const log = openSync(this.logPath, 'a');
    const logOffset = statSync(this.logPath).size;
    writeSync(log, `\n=== chaos: spawn #${generation} of ${spec.name} at ${new Date().toISOString()} ===\n`);
    this.logOffset = logOffset;
    const child = spawn(process.execPath, ['--import', 'tsx', spec.entry], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'info', ...spec.env },
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    this.child = child;
    everyChild.add(child);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        everyChild.delete(child);
        const exit = { code, signal, expected: this.expectExit, at: Date.now() };
        onExit(this, exit);
        resolve(exit);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get ready(): boolean {
    return this.readyAt !== undefined && this.alive;
  }

  /** Resolve once the service says it is ready; reject if it exits first or takes too long. */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.readyAt === undefined) {
      if (!this.alive) throw new Error(`${this.spec.name} exited before it was ready; see ${this.logPath}`);
      if (Date.now() > deadline)
        throw new Error(`${this.spec.name} not ready after ${timeoutMs} ms; see ${this.logPath}`);
      if (await this.isReady()) this.readyAt = Date.now();
      else await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async isReady(): Promise<boolean> {
    if (this.spec.readyProbe) return this.spec.readyProbe().catch(() => false);
    if (!this.spec.readyLine) return true;
    const file = await open(this.logPath, 'r');
    try {
      const { size } = await file.stat();
      const length = size - this.logOffset;
      if (length <= 0) return false;
      const buffer = Buffer.alloc(Math.min(length, 4 * 1024 * 1024));
      await file.read(buffer, 0, buffer.length, this.logOffset);
      return buffer.toString('utf8').includes(this.spec.readyLine);
    } finally {
      await file.close();
    }
  }

  /** SIGKILL: the process dies at once, in the middle of whatever it was doing. */
  async kill(): Promise<Exit> {
    this.expectExit = true;
    if (this.alive) this.child.kill('SIGKILL');
    return this.exited;
  }

  /** SIGTERM (graceful), then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<Exit> {
    this.expectExit = true;
    if (this.alive) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.alive && this.child.kill('SIGKILL'), graceMs);
      const exit = await this.exited;
      clearTimeout(timer);
      return exit;
    }
    return this.exited;
  }
}

/**
 * A supervised service slot: the harness kills it on purpose and respawns it; an exit the harness
 * did not ask for is recorded as a crash (and respawned too, like a process supervisor would).
 */
export class Slot {
  current: Service;
  generation = 1;
  readonly crashes: { exit: Exit; generation: number; logPath: string }[] = [];
  private stopping = false;

  constructor(readonly spec: ServiceSpec) {
    this.current = this.spawn();
  }

  private spawn(): Service {
    return new Service(this.spec, this.generation, (service, exit) => {
      if (exit.expected || this.stopping) return;
      this.crashes.push({ exit, generation: service.generation, logPath: service.logPath });
      // A supervisor restarts a crashed process; the crash itself stays on record.
      if (service === this.current) {
        this.generation++;
        this.current = this.spawn();
      }
    });
  }

  /** SIGKILL the running process and start a fresh one. */
  async killAndRespawn(): Promise<Exit> {
    const victim = this.current;
    const exit = await victim.kill();
    if (!this.stopping && victim === this.current) {
      this.generation++;
      this.current = this.spawn();
    }
    return exit;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.current.stop();
  }
}
