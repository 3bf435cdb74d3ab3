import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Serves a buffer with single-range support, which is what media probes use to read a moov at the
 * end of a file without downloading all of it.
 */
export function sendBytes(request: FastifyRequest, reply: FastifyReply, bytes: Buffer, contentType: string) {
  reply.header('accept-ranges', 'bytes').type(contentType);
  const header = request.headers.range;
  if (!header) return reply.header('content-length', bytes.length).send(bytes);
  const range = parseRange(header, bytes.length);
  if (!range) {
    return reply.code(416).header('content-range', `bytes */${bytes.length}`).send();
  }
  const [start, end] = range;
  return reply
    .code(206)
    .header('content-range', `bytes ${start}-${end}/${bytes.length}`)
    .header('content-length', end - start + 1)
    .send(bytes.subarray(start, end + 1));
}

function parseRange(header: string, size: number): [number, number] | null {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || size === 0) return null;
  const [, from = '', to = ''] = match;
  if (from === '' && to === '') return null;
  if (from === '') {
    const suffix = Number(to);
    if (suffix === 0) return null;
    return [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(from);
  const end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  if (start >= size || end < start) return null;
  return [start, end];
}
