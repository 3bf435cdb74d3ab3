import type { IncomingHttpHeaders } from 'node:http';
import { type Dispatcher, request } from 'undici';
import { isAppError } from '../errors/app-error.js';
import { assertFetchableUrl, type LookupFn, type UrlPolicy } from '../net/ssrf.js';
import { ProbeError } from './probe-error.js';

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export interface RangeReaderOptions {
  policy: UrlPolicy;
  dispatcher: Dispatcher;
  signal: AbortSignal;
  /** HTTP requests in all, redirect hops included. */
  maxRequests: number;
  /** Most bytes taken from a server that ignores Range and sends the file from byte 0. */
  maxStreamBytes: number;
  /** Resolver for re-checking redirect targets (tests inject one). */
  lookup?: LookupFn;
}

/** A response body read in order; `position` is the file offset of `pending[0]`. */
interface Cursor {
  body: Dispatcher.ResponseData['body'];
  chunks: AsyncIterator<Buffer>;
  position: number;
  pending: Buffer;
  received: number;
  done: boolean;
}

/**
 * Reads byte ranges of a remote file with `Range` requests, following redirects by hand so each
 * Location is checked like the original URL. A server that ignores `Range` answers 200 with the
 * whole file: that body is kept open and read on in order (the box walk only moves forward),
 * discarding what is skipped, and dropped once `maxStreamBytes` have come through.
 */
export class RangeReader {
  bytesRead = 0;
  requests = 0;
  /** The file's size once a server has told it (Content-Range total or a 200's length). */
  size: number | undefined;
  private url: string;
  private full: Cursor | undefined;

  constructor(
    url: string,
    private readonly options: RangeReaderOptions,
  ) {
    this.url = url;
  }

  /** Bytes [start, start + length) of the file; fewer at its end. */
  async read(start: number, length: number): Promise<Buffer> {
    if (this.full && start >= this.full.position) return this.take(this.full, start, length);
    this.close();
    const { statusCode, headers, body } = await this.get(`bytes=${start}-${start + length - 1}`);
    if (statusCode === 416) {
      await body.dump();
      return Buffer.alloc(0);
    }
    if (statusCode === 206) {
      const range = parseContentRange(headers['content-range']);
      if (!range || range.start !== start) {
        body.destroy();
        throw new ProbeError('http', `unexpected Content-Range ${String(headers['content-range'])}`);
      }
      if (range.size !== undefined) this.size = range.size;
      const cursor = cursorOf(body, start);
      let bytes: Buffer;
      try {
        bytes = await this.take(cursor, start, length);
      } finally {
        await finish(cursor);
      }
      // Some CDNs cap the size of a range: short of the end of the file, ask for the rest.
      const missing = length - bytes.length;
      if (missing > 0 && bytes.length > 0 && this.size !== undefined && start + bytes.length < this.size) {
        return Buffer.concat([bytes, await this.read(start + bytes.length, missing)]);
      }
      return bytes;
    }
    if (statusCode === 200) {
      const declared = Number(headers['content-length']);
      if (Number.isSafeInteger(declared)) this.size = declared;
      this.full = cursorOf(body, 0);
      return this.take(this.full, start, length);
    }
    await body.dump();
    throw new ProbeError('http', `HTTP ${statusCode} from ${redact(this.url)}`, { status: statusCode });
  }

  /** Drops a body still open (a server that ignored Range). */
  close(): void {
    this.full?.body.destroy();
    this.full = undefined;
  }

  private async take(cursor: Cursor, start: number, length: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < length) {
      if (cursor.pending.length === 0) {
        if (cursor.done) break;
        if (cursor === this.full && cursor.received >= this.options.maxStreamBytes) {
          throw new ProbeError(
            'too_large',
            `the server ignores Range requests and the movie header is not in the first ${this.options.maxStreamBytes} bytes`,
          );
        }
        const next = await cursor.chunks.next();
        if (next.done) {
          cursor.done = true;
          break;
        }
        cursor.pending = next.value;
        cursor.received += next.value.length;
        this.bytesRead += next.value.length;
      }
      const skip = Math.min(Math.max(start - cursor.position, 0), cursor.pending.length);
      const piece = cursor.pending.subarray(skip, skip + (length - have));
      if (piece.length > 0) parts.push(piece);
      have += piece.length;
      cursor.pending = cursor.pending.subarray(skip + piece.length);
      cursor.position += skip + piece.length;
    }
    return Buffer.concat(parts, have);
  }

  private async get(range: string): Promise<Dispatcher.ResponseData> {
    for (let hop = 0; ; hop++) {
      if (this.requests >= this.options.maxRequests) {
        throw new ProbeError('too_large', `needed more than ${this.options.maxRequests} HTTP requests`);
      }
      this.requests++;
      const response = await request(this.url, {
        method: 'GET',
        // Byte offsets must be the file's own: no content coding.
        headers: { range, 'accept-encoding': 'identity' },
        dispatcher: this.options.dispatcher,
        signal: this.options.signal,
      });
      if (!REDIRECT_STATUSES.has(response.statusCode)) return response;
      await response.body.dump();
      const location = response.headers.location;
      if (typeof location !== 'string') {
        throw new ProbeError('http', `HTTP ${response.statusCode} without a Location`);
      }
      if (hop >= MAX_REDIRECTS) throw new ProbeError('http', `more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, this.url).href;
      await checkRedirect(next, this.options);
      this.url = next;
    }
  }
}

async function checkRedirect(url: string, options: RangeReaderOptions): Promise<void> {
  try {
    await assertFetchableUrl(url, options.policy, {
      field: 'redirect',
      ...(options.lookup ? { lookup: options.lookup } : {}),
    });
  } catch (error) {
    if (isAppError(error)) {
      const reason = error.issues?.[0]?.message ?? error.message;
      throw new ProbeError('refused', `redirected to ${redact(url)}, refused: ${reason}`, { cause: error });
    }
    throw error;
  }
}

function cursorOf(body: Dispatcher.ResponseData['body'], position: number): Cursor {
  return {
    body,
    chunks: body[Symbol.asyncIterator](),
    position,
    pending: Buffer.alloc(0),
    received: 0,
    done: false,
  };
}

/**
 * After a 206 gave what was asked, look for its end so the socket can serve the next range; a
 * server that sends more than asked loses its connection instead.
 */
async function finish(cursor: Cursor): Promise<void> {
  try {
    if (!cursor.done && cursor.pending.length === 0) {
      const next = await cursor.chunks.next();
      cursor.done = next.done === true;
    }
  } catch {
    // The read already failed or was aborted; that error is the one reported.
  }
  if (!cursor.done) cursor.body.destroy();
}

function parseContentRange(
  value: IncomingHttpHeaders[string],
): { start: number; size: number | undefined } | undefined {
  const match = typeof value === 'string' ? /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(value.trim()) : null;
  if (!match) return undefined;
  return { start: Number(match[1]), size: match[2] === '*' ? undefined : Number(match[2]) };
}

/** Origin and path only: signed URLs carry credentials in the query. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}
