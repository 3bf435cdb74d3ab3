import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { bodyEtag, notModified } from '../../etag.js';

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const FILES = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
} as const;

async function loadAssets(): Promise<Record<keyof typeof FILES, Asset>> {
  const entries = await Promise.all(
    Object.entries(FILES).map(async ([name, type]) => {
      const body = await readFile(new URL(`./assets/${name}`, import.meta.url));
      return [name, { body, type, etag: bodyEtag(body.toString('utf8')) }] as const;
    }),
  );
  return Object.fromEntries(entries) as Record<keyof typeof FILES, Asset>;
}

/**
 * `GET /dashboard`: a small page of batches, job states, spend and provider pressure, in plain
 * JavaScript (no build step) that reads the public API with the key typed into it. The page and
 * its two files are public; the data behind them needs a key. Read once at start, revalidated by
 * ETag (`no-cache`: the names carry no version, so a browser must ask, and mostly gets a 304).
 */
export default async function dashboardRoutes(app: FastifyInstance) {
  const assets = await loadAssets();
  const route = (url: string, asset: Asset) =>
    // A page, not an API operation: left out of the OpenAPI document.
    app.get(url, { schema: { hide: true }, config: { access: 'public' } }, async (request, reply) => {
      void reply.header('etag', asset.etag).header('cache-control', 'no-cache');
      if (notModified(request, asset.etag)) return reply.code(304).send();
      return reply.type(asset.type).send(asset.body);
    });
  route('/dashboard', assets['index.html']);
  route('/dashboard/', assets['index.html']);
  route('/dashboard/dashboard.js', assets['dashboard.js']);
  route('/dashboard/dashboard.css', assets['dashboard.css']);
}
