import {
  ApiKeyCreatedSchema,
  ApiKeyListSchema,
  BatchAcceptedSchema,
  BatchCancelledSchema,
  BatchListSchema,
  BatchQuoteSchema,
  BatchRetriedSchema,
  BatchViewSchema,
  BudgetListSchema,
  BudgetViewSchema,
  CostAuditSchema,
  CostReportSchema,
  ErrorBodySchema,
  JobListSchema,
  JobViewSchema,
  PrincipalViewSchema,
  StatsSchema,
  TenantViewSchema,
} from '@recast/core/contract';
import { waitFor } from '@recast/core/testing';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { systemPerTest } from './system.js';

const { start } = systemPerTest();

interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, { summary?: string; responses?: Record<string, unknown> }>>;
}

/** Fastify's `/v1/jobs/:id` is OpenAPI's `/v1/jobs/{id}`. */
const openApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

describe('OpenAPI', () => {
  it('documents every route with a summary, a success answer and its errors, and serves the docs UI', async () => {
    const s = await start({ auth: true, noWorker: true });
    const doc = (await (await fetch(`${s.apiUrl}/docs/json`)).json()) as OpenApiDoc;
    expect(doc.openapi).toMatch(/^3\./);
    const routes = s.api.routeTable.filter((r) => !r.hidden && !r.url.startsWith('/docs'));
    expect(routes.length).toBeGreaterThan(20);
    const undocumented: string[] = [];
    for (const route of routes) {
      const op = doc.paths[openApiPath(route.url)]?.[route.method.toLowerCase()];
      const codes = Object.keys(op?.responses ?? {});
      const ok = codes.some((c) => /^2\d\d$/.test(c));
      const errors = codes.some((c) => /^[45]\d\d$/.test(c)) || route.url === '/healthz';
      if (!op?.summary || !ok || !errors)
        undocumented.push(`${route.method} ${route.url} [${codes.join(',')}]`);
    }
    expect(undocumented).toEqual([]);
    // Every documented operation is a route (nothing stale in the document).
    const registered = new Set(routes.map((r) => `${r.method.toLowerCase()} ${openApiPath(r.url)}`));
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops))
        expect(registered, `${method} ${path}`).toContain(`${method} ${path}`);
    }
    // Bodies that are not JSON are declared too, so generated clients send them right.
    const content = (path: string) =>
      Object.keys(
        (doc.paths[path]?.post as { requestBody?: { content?: object } } | undefined)?.requestBody?.content ??
          {},
      );
    expect(content('/v1/jobs')).toEqual(['application/json', 'multipart/form-data']);
    expect(content('/v1/files')).toEqual(['multipart/form-data']);
    expect(content('/v1/batches')).toEqual(['application/x-ndjson', 'text/csv', 'multipart/form-data']);
    const form = doc.paths['/v1/jobs']?.post as {
      requestBody: { content: Record<string, { schema: { required: string[]; properties: object } }> };
    };
    expect(form.requestBody.content['multipart/form-data']?.schema.required).toEqual(['job']);
    expect(Object.keys(form.requestBody.content['multipart/form-data']?.schema.properties ?? {})).toEqual([
      'job',
      'video',
      'images[]',
    ]);
    const ui = await fetch(`${s.apiUrl}/docs/`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('swagger');
  });

  it('answers what it documents: real answers parse with the documented (strict) schemas', async () => {
    const s = await start({
      auth: true,
      emulator: { stepMs: 5 },
      worker: { PROVIDER_SUBMITS_PER_WINDOW: '0' },
    });
    const call = async <S extends z.ZodType>(
      schema: S,
      method: string,
      path: string,
      body?: string,
      type?: string,
    ) => {
      const res = await fetch(`${s.apiUrl}${path}`, {
        method,
        headers: { ...s.authHeaders, ...(body ? { 'content-type': type ?? 'application/json' } : {}) },
        ...(body ? { body } : {}),
      });
      const json = (await res.json()) as unknown;
      const parsed = schema.safeParse(json);
      if (!parsed.success) throw new Error(`${method} ${path} (${res.status}): ${parsed.error.message}`);
      return parsed.data as z.infer<S>;
    };
    const job = { video: s.fixture('clip-2s-faststart.mp4'), images: [s.fixture('person-a.png')] };
    const submitted = await call(JobViewSchema, 'POST', '/v1/jobs', JSON.stringify(job));
    await s.waitTerminal(submitted.id);
    await call(JobViewSchema, 'GET', `/v1/jobs/${submitted.id}`);
    await call(JobListSchema, 'GET', '/v1/jobs?state=completed');
    await call(ErrorBodySchema, 'POST', `/v1/jobs/${submitted.id}/cancel`);
    await call(ErrorBodySchema, 'POST', '/v1/jobs', JSON.stringify({ ...job, images: [] }));
    const manifest = `${JSON.stringify({ ...job, custom_id: 'a', duration_seconds: 2 })}\n${JSON.stringify({ ...job, custom_id: 'b' })}\n`;
    await call(
      BatchQuoteSchema,
      'POST',
      '/v1/batches?dry_run=true&max_cost_usd=1',
      manifest,
      'application/x-ndjson',
    );
    const batch = await call(
      BatchAcceptedSchema,
      'POST',
      '/v1/batches?name=docs',
      manifest,
      'application/x-ndjson',
    );
    await waitFor(
      async () => (await call(BatchViewSchema, 'GET', `/v1/batches/${batch.id}`)).status === 'completed',
    );
    await call(BatchListSchema, 'GET', '/v1/batches');
    await call(JobListSchema, 'GET', `/v1/batches/${batch.id}/jobs`);
    await call(BatchRetriedSchema, 'POST', `/v1/batches/${batch.id}/retry`);
    await call(BatchCancelledSchema, 'POST', `/v1/batches/${batch.id}/cancel`);
    await call(StatsSchema, 'GET', '/v1/stats');
    expect(await call(PrincipalViewSchema, 'GET', '/v1/me')).toMatchObject({
      role: 'admin',
      can_write: true,
    });
    await call(
      BudgetViewSchema,
      'PUT',
      '/v1/budgets/tenant:default',
      JSON.stringify({ window: 'daily', limit_usd: 5 }),
    );
    await call(BudgetListSchema, 'GET', '/v1/budgets');
    await call(CostReportSchema, 'GET', '/v1/costs?group_by=day,month,resolution,tenant,batch');
    await call(CostAuditSchema, 'GET', '/v1/costs/audit');
    await call(TenantViewSchema, 'GET', '/v1/tenants/default');
    await call(
      ApiKeyCreatedSchema,
      'POST',
      '/v1/admin/keys',
      JSON.stringify({ name: 'd', role: 'viewer', tenant: 'x' }),
    );
    await call(ApiKeyListSchema, 'GET', '/v1/admin/keys');
  });
});
