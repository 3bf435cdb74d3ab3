import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { migrateDatabase } from '../history/migrate.js';
import { createLogger } from '../infra/logger.js';
import { privatePostgresAvailable, startPrivatePostgres } from './private-postgres.js';

export interface TestPostgres {
  /** A URL of the server with rights to create databases (its `postgres` database). */
  adminUrl: string;
  /** A migrated database new ones are copied from (CREATE DATABASE ... TEMPLATE). */
  template: string;
  source: 'env' | 'testcontainers' | 'local' | 'private';
  stop(): Promise<void>;
}

/** The URL of `database` on the server `url` points at. */
export function databaseUrlFor(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_500 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function admin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A real PostgreSQL for a test run, never a mock: `DATABASE_URL` when set, testcontainers when a
 * Docker engine answers, the machine's own server on 127.0.0.1:5432 (trust), else a private
 * server on a temp dir (initdb). The run gets a migrated template database; each test (or file)
 * takes a fresh copy of it with `testDatabase()`, so no two tests see each other's rows.
 */
export async function startTestPostgres(
  env: Record<string, string | undefined> = process.env,
): Promise<TestPostgres> {
  let adminUrl: string | undefined;
  let source: TestPostgres['source'] = 'env';
  let stop = async () => {};
  if (env.DATABASE_URL) {
    adminUrl = env.DATABASE_URL;
  } else if (env.DOCKER_HOST || existsSync('/var/run/docker.sock')) {
    try {
      const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
      const container = await new PostgreSqlContainer('postgres:16-alpine').start();
      adminUrl = container.getConnectionUri();
      source = 'testcontainers';
      stop = async () => void (await container.stop());
    } catch {
      // No engine behind the socket: the local server, or a private one.
    }
  }
  if (!adminUrl && (await answers('postgres://postgres@127.0.0.1:5432/postgres'))) {
    adminUrl = 'postgres://postgres@127.0.0.1:5432/postgres';
    source = 'local';
  }
  if (!adminUrl) {
    if (!privatePostgresAvailable()) {
      throw new Error(
        'tests need a PostgreSQL: set DATABASE_URL, run a Docker engine, or install postgresql',
      );
    }
    const server = await startPrivatePostgres();
    adminUrl = server.url;
    source = 'private';
    stop = () => server.stop();
  }
  const template = `recast_tpl_${randomBytes(4).toString('hex')}`;
  await admin(adminUrl, (c) => c.query(`CREATE DATABASE ${template}`));
  await migrateDatabase(
    databaseUrlFor(adminUrl, template),
    createLogger({ level: 'warn', name: 'test-migrate' }),
  );
  const owner = adminUrl;
  return {
    adminUrl: owner,
    template,
    source,
    async stop() {
      // The copies made from the template are named after it: drop them all, then it.
      await admin(owner, async (c) => {
        const { rows } = await c.query<{ datname: string }>(
          'SELECT datname FROM pg_database WHERE datname LIKE $1',
          [`${template.replace('recast_tpl_', 'recast_t_')}_%`],
        );
        for (const { datname } of [...rows, { datname: template }]) {
          await c.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`).catch(() => undefined);
        }
      }).catch(() => undefined);
      await stop();
    },
  };
}

/** A fresh, migrated database copied from the run's template: its URL, and how to drop it. */
export async function createTestDatabase(
  adminUrl: string,
  template: string,
): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `${template.replace('recast_tpl_', 'recast_t_')}_${randomBytes(4).toString('hex')}`;
  // Copying a template needs it to have no other connections: retry a moment if one lingers.
  for (let tries = 0; ; tries++) {
    try {
      await admin(adminUrl, (c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${template}`));
      break;
    } catch (err) {
      if (tries >= 20) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url: databaseUrlFor(adminUrl, name),
    name,
    drop: () =>
      admin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}
