import type { Redis } from 'ioredis';
import type { Keys } from '../infra/keys.js';

/**
 * A tenant's job and batch events, as written by the job scripts (create-1.lua, transition-2.lua)
 * and the batch store: `job.created`, `job.state`, `batch.created`, `batch.started`,
 * `batch.cancelling`, `batch.reopened`, `batch.finished`. Ids are Redis stream ids (`<ms>-<seq>`),
 * ordered, and what `Last-Event-ID` resumes from.
 */
export interface RecastEvent {
  id: string;
  type: string;
  data: Record<string, string>;
}

export const STREAM_ID_PATTERN = /^\d{1,20}-\d{1,20}$/;

export class EventLog {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** The newest event's id, or `0-0` for an empty stream: "from now on". */
  async latestId(tenant: string): Promise<string> {
    const [last] = (await this.redis.xrevrange(this.keys.events(tenant), '+', '-', 'COUNT', 1)) as [
      string,
      string[],
    ][];
    return last?.[0] ?? '0-0';
  }

  /**
   * Events after `afterId` (exclusive), oldest first, at most `count`. `gap` is true when events
   * after `afterId` were already trimmed away (the reader was gone longer than the retention):
   * the reader should re-read the state it shows instead of trusting the stream to fill it in.
   */
  async after(
    tenant: string,
    afterId: string,
    count: number,
  ): Promise<{ events: RecastEvent[]; gap: boolean }> {
    const key = this.keys.events(tenant);
    const rows = (await this.redis.xrange(key, `(${afterId}`, '+', 'COUNT', count)) as [string, string[]][];
    let gap = false;
    if (afterId !== '0-0') {
      const [first] = (await this.redis.xrange(key, '-', '+', 'COUNT', 1)) as [string, string[]][];
      gap = first !== undefined && compareIds(first[0], afterId) > 0 && rows[0]?.[0] === first[0];
    }
    const events = rows.map(([id, flat]) => {
      const data: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) data[flat[i]!] = flat[i + 1]!;
      return { id, type: data.type ?? 'unknown', data };
    });
    return { events, gap };
  }
}

/** Order of two stream ids. */
export function compareIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map(BigInt);
  const [bm = 0n, bs = 0n] = b.split('-').map(BigInt);
  return am === bm ? (as === bs ? 0 : as < bs ? -1 : 1) : am < bm ? -1 : 1;
}
