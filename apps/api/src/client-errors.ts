import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { AppError } from '@recast/core/errors';
import type { FastifyInstance } from 'fastify';

/** What Node's parser attaches to the error (`rawPacket` is a Buffer at run time). */
interface ParseErrorFields {
  code?: string;
  reason?: string;
  bytesParsed?: number;
  rawPacket?: unknown;
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (a raw newline or a control
 * character in a header, headers over the size limit, a request that never finished) are answered
 * in the API's error shape, not Node's or Fastify's own `{"error":"Bad Request"}`, naming the
 * header when the parser's offset points into one.
 */
export function clientErrorHandler(this: FastifyInstance, error: Error, socket: Socket): void {
  const err = error as Error & ParseErrorFields;
  // A reset connection has nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let answer: AppError;
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    answer = new AppError('HEADERS_TOO_LARGE', 'the request headers are larger than this server accepts', {
      statusCode: 431,
    });
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    answer = new AppError('REQUEST_TIMEOUT', 'the request did not arrive in time', { statusCode: 408 });
  } else {
    const reason = (err.reason ?? err.message).replace(/^Parse Error: /, '');
    const raw = Buffer.isBuffer(err.rawPacket) ? err.rawPacket : undefined;
    const header = headerAt(raw, err.bytesParsed);
    answer = new AppError(
      'MALFORMED_REQUEST',
      `the request is not valid HTTP: ${reason}${header ? ` (in the ${header} header)` : ''}`,
      {
        statusCode: 400,
        ...(header
          ? {
              issues: [
                { path: header, message: `${reason}: header values are one line of printable characters` },
              ],
            }
          : {}),
      },
    );
  }
  this.log.debug({ err: err.message, code: err.code }, 'unreadable request');
  if (socket.writable) {
    const body = JSON.stringify({ error: answer.toJSON() });
    socket.write(
      `HTTP/1.1 ${answer.statusCode} ${STATUS_CODES[answer.statusCode]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** The name of the header whose line holds byte `offset` of the raw request, if it is a header line. */
function headerAt(raw: Buffer | undefined, offset: number | undefined): string | undefined {
  if (!raw || offset === undefined) return undefined;
  const text = raw.toString('latin1');
  const start = text.lastIndexOf('\n', Math.max(0, offset - 1)) + 1;
  if (start === 0) return undefined; // the request line itself
  const name = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):/.exec(text.slice(start, offset + 1))?.[1];
  return name;
}
