import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../../test/build-test-app.js';

let app: FastifyInstance;
beforeAll(async () => {
  // Keys are on: the page must load without one.
  app = await buildTestApp();
});
afterAll(async () => {
  await app.close();
});

describe('GET /dashboard', () => {
  it('serves the page to anyone, under the strict CSP, with and without the trailing slash', async () => {
    for (const url of ['/dashboard', '/dashboard/']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      const csp = String(res.headers['content-security-policy']);
      for (const directive of [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
      ]) {
        expect(csp).toContain(directive);
      }
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.body).toContain('<script type="module" src="/dashboard/dashboard.js"></script>');
    }
    // The data behind it is not public.
    expect((await app.inject({ method: 'GET', url: '/v1/stats' })).statusCode).toBe(401);
  });

  it('serves its script and stylesheet with their types, revalidated by ETag', async () => {
    const types = {
      '/dashboard/dashboard.js': 'text/javascript; charset=utf-8',
      '/dashboard/dashboard.css': 'text/css; charset=utf-8',
    };
    for (const [url, type] of Object.entries(types)) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe(type);
      expect(res.headers['cache-control']).toBe('no-cache');
      const etag = String(res.headers.etag);
      expect(etag).toMatch(/^"[^"]+"$/);
      const again = await app.inject({ method: 'GET', url, headers: { 'if-none-match': etag } });
      expect(again.statusCode).toBe(304);
      expect(again.body).toBe('');
    }
  });

  it('has no inline script or style for the CSP to block, and writes no markup from data', async () => {
    const html = (await app.inject({ method: 'GET', url: '/dashboard' })).body;
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    const js = (await app.inject({ method: 'GET', url: '/dashboard/dashboard.js' })).body;
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
    // Keys go in a header, never in a URL.
    expect(js).not.toMatch(/[?&](key|token|api_key)=/);
  });
});

describe('GET /dashboard/contract.js', () => {
  it("serves the contract's enums to the page, which imports them instead of declaring its own", async () => {
    const { BATCH_STATUSES, JOB_STATES } = await import('@recast/core/contract');
    const res = await app.inject({ method: 'GET', url: '/dashboard/contract.js' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(res.body).toContain(`export const JOB_STATES = Object.freeze(${JSON.stringify(JOB_STATES)});`);
    expect(res.body).toContain(
      `export const BATCH_STATUSES = Object.freeze(${JSON.stringify(BATCH_STATUSES)});`,
    );
    const page = await app.inject({ method: 'GET', url: '/dashboard/dashboard.js' });
    expect(page.body).toContain("import { FINISHED_BATCH_STATUSES, JOB_STATES } from './contract.js';");
    expect(page.body).not.toMatch(/const JOB_STATES = \[/);
    expect(page.body).not.toMatch(/const FINISHED_BATCH_STATUSES = \[/);
  });
});
