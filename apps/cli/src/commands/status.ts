import type { Context } from '../context.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { printBatch } from './show.js';
import { getBatch, watchBatch } from './watch.js';

export interface StatusOptions {
  watch?: boolean;
}

export async function status(ctx: Context, id: string, opts: StatusOptions): Promise<number> {
  if (opts.watch) return watchBatch(ctx, id);
  const batch = await getBatch(ctx, id);
  if (ctx.config.json) ctx.out.data(batch);
  else printBatch(ctx, batch);
  return EXIT.OK satisfies ExitCode;
}
