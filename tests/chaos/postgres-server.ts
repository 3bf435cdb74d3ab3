import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type PrivatePostgres,
  privatePostgresAvailable,
  startPrivatePostgres,
} from '@recast/core/testing/servers';
import pg from 'pg';

function databaseUrlFor(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * The history database of a chaos scenario: a private PostgreSQL on a data directory of the
 * scenario's own, so a scenario can stop it (an outage) and start it again on the same data and
 * port. Without the server binaries, a fresh database on DATABASE_URL's server (or the machine's
 * own on 127.0.0.1:5432), which such a scenario cannot stop (`stoppable` is false).
 */
export class ChaosPostgres {
  private constructor(
    readonly url: string,
    readonly stoppable: boolean,
    private server: PrivatePostgres | undefined,
    private readonly dir: string | undefined,
    private readonly port: number | undefined,
    private readonly drop: () => Promise<void>,
  ) {}

  static async start(): Promise<ChaosPostgres> {
    if (privatePostgresAvailable()) {
      // A directory of its own under the temp dir (the server may run as the `postgres` user,
      // which must be able to reach it).
      const dir = await mkdtemp(join(tmpdir(), 'recast-chaos-pg-'));
      const server = await startPrivatePostgres({ dir });
      return new ChaosPostgres(databaseUrlFor(server.url, 'postgres'), true, server, dir, server.port, () =>
        rm(dir, { recursive: true, force: true }),
      );
    }
    const admin = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
    const name = `recast_chaos_${randomBytes(4).toString('hex')}`;
    const run = async (sql: string) => {
      const client = new pg.Client({ connectionString: admin });
      await client.connect();
      try {
        await client.query(sql);
      } finally {
        await client.end();
      }
    };
    await run(`CREATE DATABASE ${name}`);
    return new ChaosPostgres(databaseUrlFor(admin, name), false, undefined, undefined, undefined, () =>
      run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
    );
  }

  /** Stop the server (a clean, fast shutdown: connections are cut). */
  async stopServer(): Promise<void> {
    if (!this.server) throw new Error('this scenario database cannot be stopped (no private server)');
    await this.server.stop();
  }

  /** Start it again on the same data and port. */
  async startServer(): Promise<void> {
    if (!this.dir || this.port === undefined) throw new Error('no private server to start');
    this.server = await startPrivatePostgres({ dir: this.dir, port: this.port });
  }

  async query<T extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    try {
      return (await client.query<T>(sql, values)).rows;
    } finally {
      await client.end();
    }
  }

  async close(): Promise<void> {
    await this.server?.stop().catch(() => {});
    await this.drop().catch(() => {});
  }
}
