import type { Context } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { watchBatch } from './watch.js';

export interface RetryOptions {
  includeCancelled?: boolean;
  watch?: boolean;
}

export async function retry(ctx: Context, id: string, opts: RetryOptions): Promise<number> {
  const { api } = ctx.client;
  const res = await api.send(
    api.api.POST('/v1/batches/{id}/retry', {
      params: { path: { id }, query: opts.includeCancelled ? { include_cancelled: 'true' } : {} },
    }),
  );
  const what = opts.includeCancelled ? 'failed or cancelled' : 'failed';
  if (opts.watch) {
    ctx.out.note(`batch ${res.id}: ${res.retry.retried} ${what} rows queued again`);
    return watchBatch(ctx, res.id);
  }
  if (ctx.config.json) {
    ctx.out.data(res);
    return EXIT.OK;
  }
  ctx.out.line(`batch ${res.id}: ${res.retry.retried} ${what} rows queued again (status ${res.status})`);
  if (res.retry.skipped > 0) ctx.out.line(`  ${res.retry.skipped} skipped (they moved on meanwhile)`);
  return EXIT.OK;
}
