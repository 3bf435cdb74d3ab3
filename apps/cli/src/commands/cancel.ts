import type { Context } from '../context.js';
import { EXIT } from '../exit-codes.js';

export async function cancel(ctx: Context, id: string): Promise<number> {
  const { api } = ctx.client;
  const res = await api.send(api.api.POST('/v1/batches/{id}/cancel', { params: { path: { id } } }));
  if (ctx.config.json) {
    ctx.out.data(res);
    return EXIT.OK;
  }
  const t = res.cancel;
  ctx.out.line(`batch ${res.id}: ${res.status}`);
  ctx.out.line(`  ${t.cancelled_before_spend} cancelled before any spend`);
  ctx.out.line(`  ${t.cancelling_at_provider} being cancelled at the provider (billed for what already ran)`);
  if (t.already_finished > 0) ctx.out.line(`  ${t.already_finished} had already finished`);
  return EXIT.OK;
}
