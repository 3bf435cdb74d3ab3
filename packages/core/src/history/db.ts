import pg from 'pg';
import { AppError } from '../errors/app-error.js';
import type { Logger } from '../infra/logger.js';

/**
 * The PostgreSQL side of Recast: what has finished (jobs, batches, every charge as a line item).
 * One pg Pool per process. Every write is a single statement (an upsert, or a CTE that inserts
 * line items and adds only the inserted ones to the daily sums), so no write relies on a
 * transaction spanning statements: the embedded default (PGlite behind pglite-socket, one
 * session multiplexed) behaves the same as a server.
 */
export interface Database {
  readonly pool: pg.Pool;
  /** Run one statement; a connection failure becomes DATABASE_UNAVAILABLE (503, retryable). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /**
   * A read-only REPEATABLE READ transaction on one connection: every statement in it sees the same
   * state, whatever the archiver writes meanwhile. The caller closes it.
   */
  openSnapshot(): Promise<Snapshot>;
  /** Answers within `timeoutMs`, or throws. */
  ping(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface Snapshot {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  url: string;
  logger: Logger;
  /** Connections in the pool. */
  max?: number;
  /** Deadline of one statement (ms). */
  statementTimeoutMs?: number;
}

// bigint and numeric columns come back as strings by default; Recast's money fits a double exactly
// (integer micro-dollars below 2^53), so read them as numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));

export function connectDatabase(options: DatabaseOptions): Database {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: options.statementTimeoutMs ?? 30_000,
  });
  let lastError = 0;
  // An idle client's error (the server restarted) must not crash the process; say it once a minute.
  pool.on('error', (err) => {
    if (Date.now() - lastError < 60_000) return;
    lastError = Date.now();
    options.logger.warn({ err: err.message }, 'PostgreSQL connection lost; will reconnect');
  });
  return {
    pool,
    async query(text, values) {
      try {
        return await pool.query(text, values);
      } catch (err) {
        throw asDatabaseError(err);
      }
    },
    async openSnapshot() {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      } catch (err) {
        throw asDatabaseError(err);
      }
      let closed = false;
      return {
        async query(text, values) {
          try {
            return await client.query(text, values);
          } catch (err) {
            throw asDatabaseError(err);
          }
        },
        async close() {
          if (closed) return;
          closed = true;
          try {
            await client.query('COMMIT');
            client.release();
          } catch (err) {
            client.release(err as Error);
          }
        },
      };
    },
    async ping(timeoutMs = 1_000) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          pool.query('SELECT 1'),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      await pool.end().catch(() => undefined);
    },
  };
}

/** SQLSTATE classes that mean the server is going or gone (08 connection, 57 operator intervention). */
const UNAVAILABLE_STATE = /^(08|57)/;

/**
 * An error that means "the database is not there right now" (a refused or lost connection, the
 * pool's connect timeout, a server shutting down) becomes DATABASE_UNAVAILABLE (503, retryable);
 * a SQL error (it has a SQLSTATE) stays what it is.
 */
export function asDatabaseError(err: unknown): Error {
  const code = (err as { code?: unknown }).code;
  const message = (err as Error).message ?? String(err);
  const sqlState = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  if (sqlState === undefined || UNAVAILABLE_STATE.test(sqlState)) {
    return new AppError('DATABASE_UNAVAILABLE', `the history database is not reachable: ${message}`, {
      statusCode: 503,
      retryable: true,
      cause: err,
    });
  }
  return err instanceof Error ? err : new Error(message);
}
