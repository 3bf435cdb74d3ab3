import { usd } from '../cli/output.js';
import type { Context } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { BatchListSchema, doneOf } from '../schemas.js';

export interface BatchesOptions {
  status?: string;
  limit?: number;
  cursor?: string;
}

export async function batches(ctx: Context, opts: BatchesOptions): Promise<number> {
  const page = await ctx.client.json(BatchListSchema, '/v1/batches', {
    query: { status: opts.status, limit: String(opts.limit ?? 20), cursor: opts.cursor },
  });
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
