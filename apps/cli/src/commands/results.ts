import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { Context } from '../context.js';
import { EXIT, UnreachableError } from '../exit-codes.js';

export interface ResultsOptions {
  failed?: boolean;
  csv?: boolean;
}

/**
 * Copy the results (one line per manifest row, in row order) to stdout as they arrive, so
 * `recast results b > out.jsonl` works for any batch size. A closed pipe (`| head`) ends quietly.
 */
export async function results(ctx: Context, id: string, opts: ResultsOptions): Promise<number> {
  const { api } = ctx.client;
  const web = await api.send(
    api.api.GET('/v1/batches/{id}/results', {
      params: { path: { id }, query: opts.failed ? { only: 'failed' } : {} },
      headers: { accept: opts.csv ? 'text/csv' : 'application/x-ndjson' },
      parseAs: 'stream',
    }),
  );
  const body = Readable.fromWeb(web as unknown as NodeReadableStream<Uint8Array>);
  const stdout = ctx.out.streams.stdout;
  let failure: NodeJS.ErrnoException | undefined;
  const onError = (err: NodeJS.ErrnoException) => {
    failure = err;
    body.destroy();
  };
  stdout.on('error', onError);
  try {
    for await (const chunk of body) {
      if (!stdout.write(chunk)) {
        await Promise.race([once(stdout, 'drain'), once(stdout, 'close'), once(stdout, 'error')]);
      }
      if (failure) break;
    }
  } catch (err) {
    if (!failure)
      throw new UnreachableError(`the results were cut off: ${(err as Error).message}`, { cause: err });
  } finally {
    stdout.off('error', onError);
  }
  // A reader that went away (`| head`) is not an error; any other failure to write is.
  if (failure && failure.code !== 'EPIPE') throw failure;
  return EXIT.OK;
}
