import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { RecastClient } from './client.js';
import { describeCause, isAbort, RecastNetworkError } from './errors.js';
import { isTransient } from './poll.js';
import { sleep } from './sleep.js';

/**
 * One event of `GET /v1/events`: `job.created`, `job.state`, `batch.created`, `batch.started`,
 * `batch.cancelling`, `batch.reopened`, `batch.finished`, each with its ids and new state in
 * `data`; or `reset`: the stream no longer reaches back to where this reader was (re-read the
 * state it shows, then go on).
 */
export interface RecastEvent {
  /** What `lastEventId` resumes after (none on `reset`). */
  id: string | undefined;
  type: string;
  data: Record<string, string>;
}

export interface FollowEventsOptions {
  /** Only this batch's events. */
  batch?: string;
  /** Admins: another tenant's stream. */
  tenant?: string;
  /** Resume after this event (one this stream sent): nothing after it is missed. */
  lastEventId?: string;
  /** Ends the stream (the generator returns). */
  signal?: AbortSignal;
  /** Wait before reconnecting when the server did not say (its `retry:`); default 2 s. */
  reconnectMs?: number;
  /** Consecutive failed connections tolerated before the last error is thrown; default 10. */
  maxFailures?: number;
  /** Hears each reconnection (the error that ended the last one, if any). */
  onReconnect?: (error: Error | undefined) => void;
}

/** Follow the event stream, reconnecting after the last id seen; an abort ends it quietly. */
export async function* followEvents(
  client: RecastClient,
  options: FollowEventsOptions,
): AsyncGenerator<RecastEvent> {
  let lastEventId = options.lastEventId;
  let retryMs = options.reconnectMs ?? 2_000;
  let failures = 0;
  const init = client.init(options.signal ? { signal: options.signal } : {});
  const aborted = () => init.signal?.aborted === true;
  while (!aborted()) {
    let error: Error | undefined;
    try {
      const stream = await client.send(
        client.api.GET('/v1/events', {
          params: {
            query: {
              ...(options.batch ? { batch: options.batch } : {}),
              ...(options.tenant ? { tenant: options.tenant } : {}),
              ...(lastEventId ? { last_event_id: lastEventId } : {}),
            },
          },
          headers: { accept: 'text/event-stream' },
          parseAs: 'stream',
          ...init,
        }),
      );
      failures = 0;
      const queue: EventSourceMessage[] = [];
      const parser = createParser({
        onEvent: (message) => queue.push(message),
        onRetry: (ms) => {
          retryMs = ms;
        },
      });
      const decoder = new TextDecoder();
      const chunks = (stream as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
      for (;;) {
        let next: IteratorResult<Uint8Array>;
        try {
          next = await chunks.next();
        } catch (err) {
          if (isAbort(err)) throw err;
          throw new RecastNetworkError(`the event stream broke: ${describeCause(err)}`, { cause: err });
        }
        if (next.done) break;
        parser.feed(decoder.decode(next.value, { stream: true }));
        while (queue.length > 0) {
          const message = queue.shift()!;
          if (message.id) lastEventId = message.id;
          yield {
            id: message.id,
            type: message.event ?? 'message',
            data: JSON.parse(message.data) as Record<string, string>,
          };
        }
      }
    } catch (err) {
      if (aborted() || isAbort(err)) return;
      if (!isTransient(err) || ++failures >= (options.maxFailures ?? 10)) throw err;
      error = err as Error;
    }
    options.onReconnect?.(error);
    try {
      await sleep(retryMs, init.signal);
    } catch {
      return;
    }
  }
}
