import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import helmet, { type HelmetOptions } from 'helmet';

/**
 * Security headers on every answer, as helmet's policy decides them, computed once. Why not
 * @fastify/helmet: it rebuilds helmet's middleware on every request (the policy parsed again each
 * time), a measurable cost on the polling and submit paths for headers that never change here.
 * The headers are the same for every request, so helmet is run once against a recording response
 * at start and the result set on each reply. Routes that need a looser policy (Bull Board, the
 * docs UI) set their own Content-Security-Policy afterwards.
 */
export const securityHeadersPlugin = fp(async (app: FastifyInstance, options: HelmetOptions) => {
  const headers: [string, string][] = [];
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers.push([name.toLowerCase(), Array.isArray(value) ? value.join(', ') : String(value)]);
      return this;
    },
    removeHeader() {},
    getHeader() {
      return undefined;
    },
  };
  await new Promise<void>((resolve, reject) =>
    helmet(options)(
      { headers: {}, method: 'GET', url: '/' } as IncomingMessage,
      recorder as unknown as ServerResponse,
      (err?: unknown) => (err ? reject(err) : resolve()),
    ),
  );
  const fixed = Object.fromEntries(headers);
  app.addHook('onRequest', async (_request, reply) => {
    void reply.headers(fixed);
  });
});
