import type { BatchesQuery } from '@recast/client';
import { usd } from '../cli/output.js';
import type { Context } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { doneOf } from '../schemas.js';

export interface BatchesOptions {
  status?: string;
  limit?: number;
  cursor?: string;
}

export async function batches(ctx: Context, opts: BatchesOptions): Promise<number> {
  const { api } = ctx.client;
  const page = await api.send(
    api.api.GET('/v1/batches', {
      params: {
        query: {
          // Checked by the API (a status it does not know is a 400 naming the list).
          status: opts.status as BatchesQuery['status'],
          limit: opts.limit ?? 20,
          ...(opts.cursor ? { cursor: opts.cursor } : {}),
        },
      },
    }),
  );
  if (ctx.config.json) {
    ctx.out.data(page);
    return EXIT.OK;
  }
  if (page.data.length === 0) {
    ctx.out.note(opts.status ? `no ${opts.status} batches` : 'no batches');
    return EXIT.OK;
  }
  ctx.out.table(
    ['ID', 'NAME', 'STATUS', 'DONE', 'SPENT'],
    page.data.map((b) => [
      b.id,
      b.name ?? '-',
      b.status,
      `${doneOf(b)}/${b.rows.total}`,
      usd(b.cost.spent_micro_usd),
    ]),
    [3, 4],
  );
  if (page.next_cursor) ctx.out.note(`more: recast batches --cursor ${page.next_cursor}`);
  return EXIT.OK;
}
