import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { EmulatorContext } from '../context.js';
import { isTerminal } from '../status.js';
import type { TaskRecord } from '../tasks/task-record.js';
import { fullView, partialView } from '../tasks/views.js';

/** Open stream responses, so that close() can let their last lines out before cutting sockets. */
export class OpenStreams {
  private readonly pending = new Set<Promise<void>>();

  track(response: ServerResponse): void {
    const done = Promise.race([once(response, 'finish'), once(response, 'close')]).then(
      () => undefined,
      () => undefined,
    );
    this.pending.add(done);
    void done.then(() => this.pending.delete(done));
  }

  async drain(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.all(this.pending), deadline]);
    clearTimeout(timer);
  }
}

/**
 * GET /tasks/{id}/stream as NDJSON: the full task first, then `{data, fields}` for each change,
 * heartbeats in between, and the connection closes after the terminal update.
 */
export function streamTask(ctx: EmulatorContext, task: TaskRecord, reply: FastifyReply) {
  const stream = new PassThrough();
  const write = (line: unknown) => {
    if (!stream.writableEnded) stream.write(`${JSON.stringify(line)}\n`);
  };
  // `connection: close`: a finished stream must not leave an idle keep-alive socket that holds
  // up server.close() until its timeout.
  reply
    .header('content-type', 'application/x-ndjson')
    .header('cache-control', 'no-cache')
    .header('connection', 'close');
  write(fullView(task, ctx.faults()));
  if (isTerminal(task.status)) {
    stream.end();
    return reply.send(stream);
  }

  const heartbeat = setInterval(() => write({ type: 'heartbeat' }), ctx.heartbeatMs);
  let unsubscribe: () => void = () => {};
  const stop = () => {
    clearInterval(heartbeat);
    unsubscribe();
    if (!stream.writableEnded) stream.end();
  };
  unsubscribe = ctx.engine.subscribe(task.id, {
    change: (changed, fields) => write(partialView(changed, fields, ctx.faults())),
    end: stop,
  });
  // The client went away: stop the heartbeat and let go of the task.
  reply.raw.on('close', stop);
  ctx.streams.track(reply.raw);
  return reply.send(stream);
}
