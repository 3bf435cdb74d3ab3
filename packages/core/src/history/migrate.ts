import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import type { Logger } from '../infra/logger.js';

/** The SQL migrations shipped with core (`<timestamp>_<name>.sql`, `-- Up Migration` / `-- Down Migration`). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/**
 * Bring the history schema up to date with node-pg-migrate, under its advisory lock in `wait`
 * mode: any number of processes may start at once; the first applies what is missing, the others
 * wait for it and find nothing left to do. Returns the names of the migrations applied here.
 */
export async function migrateDatabase(url: string, logger: Logger): Promise<string[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const applied = await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      direction: 'up',
      migrationsTable: 'recast_migrations',
      advisoryLockMode: 'wait',
      checkOrder: true,
      log: () => undefined,
      logger: {
        debug: () => undefined,
        info: (msg: string) => logger.debug({ migrate: msg }, 'migration'),
        warn: (msg: string) => logger.warn({ migrate: msg }, 'migration'),
        error: (msg: string) => logger.error({ migrate: msg }, 'migration'),
      },
    });
    const names = applied.map((m) => m.name);
    if (names.length > 0) logger.info({ applied: names }, 'history database migrated');
    return names;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Migrate at start without making the database a condition of starting: the live path (submit,
 * dispatch, webhooks, settle) needs Redis only, so a process that meets a PostgreSQL that is down
 * starts anyway and keeps trying in the background until the schema is up to date. `first` settles
 * after the first try (whatever its outcome): a process awaits it, so that when the database is
 * up it serves with the schema in place.
 */
export function keepMigrating(
  url: string,
  logger: Logger,
  retryMs = 5_000,
): { readonly done: boolean; first: Promise<void>; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let failures = 0;
  let settleFirst: () => void = () => undefined;
  const state = {
    done: false,
    first: new Promise<void>((resolve) => {
      settleFirst = resolve;
    }),
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
  const attempt = () => {
    migrateDatabase(url, logger)
      .then(() => {
        state.done = true;
      })
      .catch((err: Error) => {
        if (failures++ % 12 === 0)
          logger.warn({ err: err.message }, 'history database not migrated yet; retrying');
        if (!stopped) timer = setTimeout(attempt, retryMs).unref();
      })
      .finally(() => settleFirst());
  };
  attempt();
  return state;
}
