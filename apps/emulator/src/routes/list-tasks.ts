import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { parseOrThrow } from '../app-input.js';
import type { EmulatorContext } from '../context.js';
import { ProblemError } from '../problem.js';
import { fullView, scalarView } from '../tasks/views.js';

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;

/** The SDK's CursorListRequest; only what the emulator honours is checked, the rest is ignored. */
const ListRequestSchema = z.looseObject({
  cursor: z.string().optional(),
  limit: z.number().int().min(0).optional(),
  direction: z.enum(['next', 'prev', '']).optional(),
  filters: z
    .array(z.looseObject({ field: z.string(), operator: z.string(), value: z.unknown().optional() }))
    .nullish(),
});

type Filter = { field: string; operator: string; value?: unknown };

function encodeCursor(seq: number): string {
  return Buffer.from(`t:${seq}`).toString('base64url');
}

function decodeCursor(cursor: string): number {
  const match = /^t:(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new ProblemError(400, 'invalid_request', 'cursor: not a cursor this API issued');
  return Number(match[1]);
}

function likeToRegExp(pattern: string, flags: string): RegExp {
  const escaped = pattern
    .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    .replace(/%/g, '.*')
    .replace(/_/g, '.');
  return new RegExp(`^${escaped}$`, flags);
}

function matches(view: Record<string, unknown>, filter: Filter, index: number): boolean {
  // Status may be filtered by number or by name; names survive the numbering change.
  const key = filter.field === 'status' && typeof filter.value === 'string' ? 'status_text' : filter.field;
  const actual = view[key];
  const { value } = filter;
  switch (filter.operator) {
    case 'eq':
      return isDeepStrictEqual(actual, value);
    case 'neq':
      return !isDeepStrictEqual(actual, value);
    case 'in':
      return Array.isArray(value) && value.some((item) => isDeepStrictEqual(actual, item));
    case 'not_in':
      return Array.isArray(value) && !value.some((item) => isDeepStrictEqual(actual, item));
    case 'contains':
      return typeof actual === 'string' && typeof value === 'string' && actual.includes(value);
    case 'like':
    case 'ilike':
      return (
        typeof actual === 'string' &&
        typeof value === 'string' &&
        likeToRegExp(value, filter.operator === 'ilike' ? 'i' : '').test(actual)
      );
    case 'is_null':
      return actual === null || actual === undefined;
    case 'is_not_null':
      return actual !== null && actual !== undefined;
    default:
      throw new ProblemError(
        400,
        'invalid_request',
        `filters[${index}].operator: unsupported "${filter.operator}"`,
      );
  }
}

/** POST /tasks/list: newest first, opaque cursors, `next` walks to older tasks and `prev` back. */
export function pageTasks(ctx: EmulatorContext, body: unknown) {
  const request = parseOrThrow(ListRequestSchema, body ?? {}, '');
  const limit = Math.min(request.limit || DEFAULT_LIMIT, MAX_LIMIT);
  const faults = ctx.faults();
  // A provider without list filtering (faults.listFilters false) answers as if none were given.
  const filters = faults.listFilters ? (request.filters ?? []) : [];
  // Filters are checked against the scalar fields only; full views are built for the page alone.
  // A filter on the exact webhook URL is answered from an index, as a provider's database would.
  const byWebhook = filters.find(
    (f) => f.field === 'webhook' && f.operator === 'eq' && typeof f.value === 'string',
  );
  const candidates = byWebhook ? ctx.engine.listByWebhook(byWebhook.value as string) : ctx.engine.list();
  const rows = candidates
    .filter((task) => {
      if (filters.length === 0) return true;
      const view = scalarView(task, faults);
      return filters.every((filter, index) => matches(view, filter, index));
    })
    .map((task) => ({ seq: task.seq, task }));

  let page: typeof rows;
  if (!request.cursor) {
    page = rows.slice(0, limit);
  } else if (request.direction === 'prev') {
    const anchor = decodeCursor(request.cursor);
    const newer = rows.filter((row) => row.seq > anchor);
    page = newer.slice(Math.max(0, newer.length - limit));
  } else {
    const anchor = decodeCursor(request.cursor);
    page = rows.filter((row) => row.seq < anchor).slice(0, limit);
  }

  const first = page[0];
  const last = page.at(-1);
  const hasNext = last !== undefined && rows.some((row) => row.seq < last.seq);
  const hasPrevious = first !== undefined && rows.some((row) => row.seq > first.seq);
  return {
    items: page.map((row) => fullView(row.task, faults)),
    next_cursor: hasNext && last ? encodeCursor(last.seq) : '',
    prev_cursor: hasPrevious && first ? encodeCursor(first.seq) : '',
    has_next: hasNext,
    has_previous: hasPrevious,
    items_per_page: limit,
    total_items: rows.length,
  };
}
