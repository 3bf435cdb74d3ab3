import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** A strong ETag of a JSON body: the same bytes always give the same tag. */
export function bodyEtag(body: string): string {
  return `"${createHash('sha1').update(body).digest('base64url')}"`;
}

/** Whether the request's If-None-Match names this tag (or `*`). */
export function notModified(request: FastifyRequest, etag: string): boolean {
  const header = request.headers['if-none-match'];
  if (typeof header !== 'string') return false;
  return header
    .split(',')
    .map((t) => t.trim())
    .some((t) => t === etag || t === '*');
}

/**
 * Answer a cacheable read: 304 with no body when the client has this version, else the body with
 * its ETag. Dashboards poll these endpoints all day; most answers are then a few bytes.
 */
export function sendCacheable(request: FastifyRequest, reply: FastifyReply, value: unknown, etag?: string) {
  const body = JSON.stringify(value);
  const tag = etag ?? bodyEtag(body);
  void reply.header('etag', tag).header('cache-control', 'private, no-cache');
  if (notModified(request, tag)) return reply.code(304).send();
  return reply.type('application/json; charset=utf-8').send(body);
}
