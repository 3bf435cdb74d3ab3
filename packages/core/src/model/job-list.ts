import type { Redis } from 'ioredis';
import { encodeTime } from 'ulid';
import { AppError } from '../errors/app-error.js';
import type { Keys } from '../infra/keys.js';
import { decodeRecord, type JobRecord } from './record.js';
import type { JobState } from './states.js';

export interface JobListQuery {
  /** Only this tenant's jobs; undefined = every tenant (admins only, decided by the caller). */
  tenant?: string;
  state?: JobState;
  batch?: string;
  /** Created at or after / before (exclusive) these instants. */
  createdFrom?: Date;
  createdTo?: Date;
  /** Newest first (default) or oldest first. */
  order: 'desc' | 'asc';
  limit: number;
  cursor?: string;
}

export interface JobListPage {
  jobs: JobRecord[];
  /** Opaque; absent when there is nothing after this page. */
  next_cursor: string | null;
}

/** Most records read for one page when a filter is not covered by an index (batch + state). */
const MAX_SCAN = 5_000;

/** The lexicographic bound of job ids created at `ms` (ULIDs sort by their time prefix). */
export function idAt(ms: number): string {
  return `job_${encodeTime(Math.max(0, Math.min(ms, 2 ** 48 - 1)), 10)}`;
}

function badCursor(): AppError {
  return new AppError('VALIDATION_FAILED', 'invalid cursor', {
    statusCode: 400,
    issues: [{ path: 'cursor', message: 'must be the next_cursor of a previous page' }],
  });
}

export function decodeCursor(cursor: string | undefined): { id?: string; line?: number } {
  if (cursor === undefined) return {};
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (parsed && typeof parsed === 'object') {
      const { id, line } = parsed as { id?: unknown; line?: unknown };
      if (typeof id === 'string' && /^job_[0-9A-Z]{26}$/.test(id)) return { id };
      if (typeof line === 'number' && Number.isInteger(line) && line >= 0) return { line };
    }
  } catch {
    // reported below
  }
  throw badCursor();
}

export const encodeCursor = (value: { id: string } | { line: number }) =>
  Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * Job listings in a stable order without scanning: every job is in the all-jobs index, its
 * tenant's, and the by-state ones of both (moved by the transition script), ordered by id, and ids
 * sort by creation time, so a created range is an id range. A batch's jobs come from the batch's
 * own index in row order; a state filter on top of it reads ahead at most MAX_SCAN records and
 * hands back a cursor, so a page may be short but a request stays bounded.
 */
export async function listJobs(redis: Redis, keys: Keys, query: JobListQuery): Promise<JobListPage> {
  const cursor = decodeCursor(query.cursor);
  if (query.batch !== undefined) return listBatchJobs(redis, keys, query, cursor.line ?? 0);
  if (cursor.line !== undefined) throw badCursor();
  const index = keys.jobIndex(query.tenant, query.state);
  let low = query.createdFrom ? `[${idAt(query.createdFrom.getTime())}` : '-';
  let high = query.createdTo ? `(${idAt(query.createdTo.getTime())}` : '+';
  if (cursor.id) {
    if (query.order === 'desc') high = `(${cursor.id}`;
    else low = `(${cursor.id}`;
  }
  const ids =
    query.order === 'desc'
      ? await redis.zrevrangebylex(index, high, low, 'LIMIT', 0, query.limit + 1)
      : await redis.zrangebylex(index, low, high, 'LIMIT', 0, query.limit + 1);
  const page = ids.slice(0, query.limit);
  const jobs = (await readJobs(redis, keys, page)).filter((job) => job !== undefined);
  const last = page.at(-1);
  return { jobs, next_cursor: ids.length > query.limit && last ? encodeCursor({ id: last }) : null };
}

async function listBatchJobs(
  redis: Redis,
  keys: Keys,
  query: JobListQuery,
  afterLine: number,
): Promise<JobListPage> {
  const jobs: JobRecord[] = [];
  let after = afterLine;
  let scanned = 0;
  for (;;) {
    const chunk = Math.min(500, MAX_SCAN - scanned);
    const entries = await redis.zrangebyscore(
      keys.batchJobs(query.batch!),
      `(${after}`,
      '+inf',
      'WITHSCORES',
      'LIMIT',
      0,
      chunk,
    );
    if (entries.length === 0) return { jobs, next_cursor: null };
    const ids: string[] = [];
    const lines: number[] = [];
    for (let i = 0; i < entries.length; i += 2) {
      ids.push(entries[i]!);
      lines.push(Number(entries[i + 1]));
    }
    const records = await readJobs(redis, keys, ids);
    for (const [i, job] of records.entries()) {
      after = lines[i]!;
      scanned++;
      // The caller checked that the batch is the tenant's; its rows are all of that tenant.
      if (!job) continue;
      if (query.state !== undefined && job.state !== query.state) continue;
      const created = Date.parse(job.created_at);
      if (query.createdFrom && created < query.createdFrom.getTime()) continue;
      if (query.createdTo && created >= query.createdTo.getTime()) continue;
      jobs.push(job);
      if (jobs.length >= query.limit) return { jobs, next_cursor: encodeCursor({ line: after }) };
    }
    if (scanned >= MAX_SCAN) return { jobs, next_cursor: encodeCursor({ line: after }) };
  }
}

/** Records by id, in the given order (undefined where a record is gone). */
async function readJobs(
  redis: Redis,
  keys: Keys,
  ids: readonly string[],
): Promise<(JobRecord | undefined)[]> {
  if (ids.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hgetall(keys.job(id));
  const replies = (await pipeline.exec()) ?? [];
  return replies.map(([, hash]) => {
    const h = hash as Record<string, string> | null;
    return h?.state ? decodeRecord(h) : undefined;
  });
}
