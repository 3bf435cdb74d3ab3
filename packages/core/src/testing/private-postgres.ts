import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './private-redis.js';

/** The directory of PostgreSQL's server binaries (initdb, postgres), if they are installed. */
export function postgresBinDir(): string | undefined {
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  const candidates = [
    fromConfig.status === 0 ? fromConfig.stdout.trim() : '',
    ...(existsSync('/usr/lib/postgresql')
      ? readdirSync('/usr/lib/postgresql')
          .sort()
          .reverse()
          .map((v) => `/usr/lib/postgresql/${v}/bin`)
      : []),
  ];
  return candidates.find(
    (dir) => dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres')),
  );
}

/** initdb and postgres refuse to run as root: as root, they run as the `postgres` user when there is one. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const found = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (found.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(found.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export function privatePostgresAvailable(): boolean {
  return postgresBinDir() !== undefined && (process.getuid?.() !== 0 || runAs() !== undefined);
}

export interface PrivatePostgresOptions {
  /** Keep data here; default a fresh temp dir, removed on stop. */
  dir?: string;
  port?: number;
  /** Durable writes (off for tests: a crashed test server's data is thrown away anyway). */
  fsync?: boolean;
}

export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication on loopback). */
  url: string;
  port: number;
  dir: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** A private PostgreSQL server on a free port and a data directory of its own (initdb + postgres). */
export async function startPrivatePostgres(options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL server binaries (initdb, postgres) on this machine');
  const user = runAs();
  if (process.getuid?.() === 0 && !user) throw new Error('as root, initdb needs a `postgres` user to run as');
  const owned = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'recast-postgres-')));
  await mkdir(dir, { recursive: true });
  if (user) await chmod(dir, 0o777);
  const data = join(dir, 'data');
  const spawnOptions = user ? { uid: user.uid, gid: user.gid } : {};
  if (!existsSync(join(data, 'PG_VERSION'))) {
    const init = spawnSync(
      join(bin, 'initdb'),
      ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'],
      {
        encoding: 'utf8',
        ...spawnOptions,
      },
    );
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  }
  const port = options.port ?? (await freePort());
  const child = spawn(
    join(bin, 'postgres'),
    [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `fsync=${options.fsync ? 'on' : 'off'}`,
      '-c',
      'max_connections=300',
    ],
    { stdio: 'ignore', ...spawnOptions },
  );
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
    try {
      await client.connect();
      await client.end();
      break;
    } catch {
      await client.end().catch(() => undefined);
      if (child.exitCode !== null) throw new Error(`postgres exited with ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error('postgres did not start within 20 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    port,
    dir,
    process: child,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGINT');
        await exited;
      }
      if (owned) await rm(dir, { recursive: true, force: true });
    },
  };
}
