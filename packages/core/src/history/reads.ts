import type { BatchView } from '../batches/view.js';
import { type JobRecord, JobRecordSchema } from '../model/record.js';
import type { JobState } from '../model/states.js';
import type { Database } from './db.js';

/** Archived records, read the way the live ones are listed (see records.ts, which merges both). */

export interface ArchivedJobQuery {
  tenant?: string | undefined;
  state?: JobState | undefined;
  /** Id bounds (ULIDs: a created range is an id range), exclusive where noted. */
  fromId?: string | undefined;
  /** Exclusive. */
  toId?: string | undefined;
  /** Exclusive: the page starts after (desc: before) this id. */
  afterId?: string | undefined;
  order: 'desc' | 'asc';
  limit: number;
}

function parseRecord(value: unknown): JobRecord {
  return JobRecordSchema.parse(value);
}

export async function archivedJob(db: Database, id: string): Promise<JobRecord | undefined> {
  const { rows } = await db.query<{ record: unknown }>('SELECT record FROM recast_jobs WHERE id = $1', [id]);
  return rows[0] ? parseRecord(rows[0].record) : undefined;
}

export async function archivedJobs(db: Database, query: ArchivedJobQuery): Promise<JobRecord[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (clause: string, value: unknown) => {
    values.push(value);
    where.push(clause.replace('?', `$${values.length}`));
  };
  if (query.tenant !== undefined) add('tenant = ?', query.tenant);
  if (query.state !== undefined) add('state = ?', query.state);
  if (query.fromId !== undefined) add('id >= ?', query.fromId);
  if (query.toId !== undefined) add('id < ?', query.toId);
  if (query.afterId !== undefined) add(query.order === 'desc' ? 'id < ?' : 'id > ?', query.afterId);
  values.push(query.limit);
  const { rows } = await db.query<{ record: unknown }>(
    `SELECT record FROM recast_jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY id ${query.order === 'desc' ? 'DESC' : 'ASC'} LIMIT $${values.length}`,
    values,
  );
  return rows.map((r) => parseRecord(r.record));
}

/** A batch's archived rows in line order, after `afterLine`. */
export async function archivedBatchJobs(
  db: Database,
  batchId: string,
  afterLine: number,
  limit: number,
  state?: JobState,
): Promise<JobRecord[]> {
  const { rows } = await db.query<{ record: unknown }>(
    `SELECT record FROM recast_jobs WHERE batch_id = $1 AND line > $2 ${state ? 'AND state = $4' : ''}
     ORDER BY line LIMIT $3`,
    state ? [batchId, afterLine, limit, state] : [batchId, afterLine, limit],
  );
  return rows.map((r) => parseRecord(r.record));
}

/** Records of these ids that the history holds. */
export async function archivedJobsById(
  db: Database,
  ids: readonly string[],
): Promise<Map<string, JobRecord>> {
  if (ids.length === 0) return new Map();
  const { rows } = await db.query<{ record: unknown }>('SELECT record FROM recast_jobs WHERE id = ANY($1)', [
    ids,
  ]);
  return new Map(rows.map((r) => parseRecord(r.record)).map((record) => [record.id, record]));
}

export async function archivedBatch(db: Database, id: string): Promise<BatchView | undefined> {
  const { rows } = await db.query<{ view: BatchView }>('SELECT view FROM recast_batches WHERE id = $1', [id]);
  // Views archived before a field existed read it as it is for every finished batch (archived
  // since, it is there already, in its place).
  const view = rows[0]?.view as Partial<BatchView> | undefined;
  if (!view || 'eta' in view) return view as BatchView | undefined;
  return { completion_window: null, expires_at: null, ...view, eta: null } as BatchView;
}

/** A tenant's archived batch ids, newest first, before `cursor`. */
export async function archivedBatchIds(
  db: Database,
  tenant: string,
  limit: number,
  cursor?: string,
): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM recast_batches WHERE tenant = $1 ${cursor ? 'AND id < $3' : ''} ORDER BY id DESC LIMIT $2`,
    cursor ? [tenant, limit, cursor] : [tenant, limit],
  );
  return rows.map((r) => r.id);
}
