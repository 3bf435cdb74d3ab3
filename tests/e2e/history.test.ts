import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrateDatabase } from '@recast/core/history';
import { newJobId } from '@recast/core/model';
import { costReport } from '@recast/core/money';
import { webhookUrl } from '@recast/core/provider';
import { testLogger, waitFor } from '@recast/core/testing';
import {
  type PrivatePostgres,
  privatePostgresAvailable,
  startPrivatePostgres,
} from '@recast/core/testing/servers';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { ADMIN_KEY, type System, systemPerTest } from './system.js';

const { start, onCleanup } = systemPerTest();

const admin = { authorization: `Bearer ${ADMIN_KEY}` };

async function keyFor(s: System, tenant: string): Promise<Record<string, string>> {
  const res = await fetch(`${s.apiUrl}/v1/admin/keys`, {
    method: 'POST',
    headers: { ...admin, 'content-type': 'application/json' },
    body: JSON.stringify({ name: `${tenant} key`, role: 'submitter', tenant }),
  });
  expect(res.status).toBe(201);
  return { authorization: `Bearer ${((await res.json()) as { key: string }).key}` };
}

function job(s: System, i: number) {
  return {
    video: s.fixture(i % 2 ? 'clip-2s-faststart.mp4' : 'clip-3s.mov'),
    images: [s.fixture('person-a.png')],
    duration_seconds: i % 2 ? 2 : 3,
    resolution: i % 3 === 0 ? '1080p' : '720p',
    metadata: { i },
  };
}

async function get(s: System, path: string, headers: Record<string, string>) {
  const res = await fetch(`${s.apiUrl}${path}`, { headers });
  return {
    status: res.status,
    etag: res.headers.get('etag'),
    type: res.headers.get('content-type'),
    text: await res.text(),
  };
}

/** Every page of a cursor-paged listing, as the client sees it (bodies, cursors and all). */
async function pages(s: System, path: string, headers: Record<string, string>) {
  const out: unknown[] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const res = await get(s, `${path}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''}`, headers);
    expect(res.status).toBe(200);
    const body = JSON.parse(res.text) as { next_cursor: string | null };
    out.push(body);
    cursor = body.next_cursor;
  } while (cursor && out.length < 50);
  return out;
}

async function leftRedis(s: System, ids: string[], batchId: string) {
  await waitFor(
    async () => {
      const pipeline = s.redis.pipeline();
      for (const id of ids) pipeline.exists(s.keys.job(id));
      pipeline.exists(s.keys.batch(batchId));
      const replies = (await pipeline.exec()) ?? [];
      return replies.every(([, n]) => n === 0);
    },
    { timeoutMs: 30_000, what: 'finished jobs and the batch evicted from Redis' },
  );
}

describe('the history: PostgreSQL keeps what has finished', () => {
  it('answers the same bodies and ETags for jobs, listings and batches once they have left Redis', async () => {
    const s = await start({ auth: true, worker: { REDIS_JOB_RETENTION_MS: '1500' } });
    const acme = await keyFor(s, 'acme');
    const globex = await keyFor(s, 'globex');
    const singles: string[] = [];
    for (let i = 0; i < 4; i++) singles.push((await s.submit(job(s, i), i === 3 ? globex : acme)).id);
    const manifest = `${Array.from({ length: 7 }, (_, i) => JSON.stringify({ custom_id: `row-${i}`, ...job(s, i) })).join('\n')}\n`;
    const up = await fetch(`${s.apiUrl}/v1/batches`, {
      method: 'POST',
      headers: { ...acme, 'content-type': 'application/x-ndjson' },
      body: manifest,
    });
    expect(up.status).toBe(202);
    const batchId = ((await up.json()) as { id: string }).id;
    const batchJobs = await waitFor(
      async () => {
        const res = JSON.parse((await get(s, `/v1/batches/${batchId}/jobs?limit=100`, acme)).text) as {
          data: { id: string; state: string }[];
        };
        return res.data.length === 7 && res.data.every((j) => ['completed', 'failed'].includes(j.state))
          ? res.data.map((j) => j.id)
          : undefined;
      },
      { timeoutMs: 30_000, what: 'the batch finished' },
    );
    for (const id of singles) await s.waitTerminal(id, 20_000);
    await waitFor(
      async () => JSON.parse((await get(s, `/v1/batches/${batchId}`, acme)).text).finished_at !== null,
      { what: 'the batch has its finish time' },
    );

    const read = async () => ({
      jobs: await Promise.all(singles.map((id, i) => get(s, `/v1/jobs/${id}`, i === 3 ? globex : acme))),
      list: await pages(s, '/v1/jobs?limit=3', acme),
      listAsc: await pages(s, '/v1/jobs?limit=4&order=asc&state=completed', admin),
      listBatch: await pages(s, `/v1/jobs?batch=${batchId}&limit=2`, acme),
      batch: await get(s, `/v1/batches/${batchId}`, acme),
      batchList: await get(s, '/v1/batches', acme),
      batchPages: await pages(s, `/v1/batches/${batchId}/jobs?limit=3`, acme),
      results: await get(s, `/v1/batches/${batchId}/results`, acme),
      resultsCsv: await get(s, `/v1/batches/${batchId}/results`, { ...acme, accept: 'text/csv' }),
      otherTenant: await get(s, `/v1/jobs/${singles[0]}`, globex),
      // Its timeline is archived with the record (the provider's part is the API's cached read).
      timelines: await Promise.all(
        singles.map((id, i) => get(s, `/v1/jobs/${id}/timeline`, i === 3 ? globex : acme)),
      ),
    });
    const live = await read();
    expect(live.jobs.every((r) => r.status === 200 && r.etag)).toBe(true);
    expect(live.otherTenant.status).toBe(404);
    expect(live.timelines.map((r) => JSON.parse(r.text).states.at(-1).state)).toEqual(
      live.jobs.map((r) => JSON.parse(r.text).state),
    );
    expect(JSON.parse(live.batch.text).counts.completed).toBe(7);

    await leftRedis(s, [...singles, ...batchJobs], batchId);
    const archived = await read();
    expect(archived).toEqual(live);

    // A poller holding the tag of an archived job still gets its 304.
    const etag = live.jobs[0]!.etag!;
    const cached = await fetch(`${s.apiUrl}/v1/jobs/${singles[0]}`, {
      headers: { ...acme, 'if-none-match': etag },
    });
    expect(cached.status).toBe(304);
    // An archived batch is finished for good: it is not re-run or cancelled, and says why.
    const retry = await fetch(`${s.apiUrl}/v1/batches/${batchId}/retry`, { method: 'POST', headers: acme });
    expect(retry.status).toBe(409);
    expect(((await retry.json()) as { error: { code: string } }).error.code).toBe('BATCH_ARCHIVED');
    const cancel = await fetch(`${s.apiUrl}/v1/jobs/${singles[0]}/cancel`, { method: 'POST', headers: acme });
    expect(cancel.status).toBe(409);
    expect(((await cancel.json()) as { error: { code: string } }).error.code).toBe('JOB_FINISHED');
  });

  it('reports costs from the line items equal to the Redis counters, and streams the line items per tenant', async () => {
    const s = await start({ auth: true });
    const acme = await keyFor(s, 'acme');
    const globex = await keyFor(s, 'globex');
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await s.submit(job(s, i), i % 3 === 2 ? globex : acme)).id);
    for (const id of ids) await s.waitTerminal(id, 20_000);
    await waitFor(async () => (await s.redis.zcard(s.keys.outboxCharges())) === 0, {
      what: 'charges archived',
    });

    const today = new Date().toISOString().slice(0, 10);
    for (const groupBy of [
      'resolution',
      'day,resolution',
      'month',
      'tenant,batch',
      'tenant,resolution,day',
    ]) {
      const res = await get(s, `/v1/costs?group_by=${groupBy}&from=${today}&to=${today}`, admin);
      const report = JSON.parse(res.text);
      expect(report.source).toBe('history');
      const counters = await costReport(s.redis, s.keys, {
        from: today,
        to: today,
        groupBy: groupBy.split(',') as never,
      });
      expect({ rows: report.rows, total: report.total }).toEqual({
        rows: counters.rows,
        total: counters.total,
      });
    }
    const total = JSON.parse((await get(s, '/v1/costs', admin)).text).total;
    const bill = (await s.emulatorState()).bill;
    expect(total.micro_usd).toBe(bill.total_micro_usd);

    // The line items: JSONL for everyone (admin), a tenant's own only, and CSV for finance.
    const all = await get(s, '/v1/costs/items', admin);
    expect(all.type).toContain('application/x-ndjson');
    const items = all.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(items).toHaveLength(6);
    expect(items.reduce((a, i) => a + i.micro_usd, 0)).toBe(bill.total_micro_usd);
    expect(new Set(items.map((i) => i.job_id))).toEqual(new Set(ids));
    expect(items.every((i) => i.archived === true && i.kind === 'run' && i.task_id)).toBe(true);
    const own = (await get(s, '/v1/costs/items?tenant=globex', acme)).text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(own.map((i) => i.tenant)).toEqual(['acme', 'acme', 'acme', 'acme']);
    const csv = await get(s, '/v1/costs/items', { ...globex, accept: 'text/csv' });
    expect(csv.type).toContain('text/csv');
    const lines = csv.text.trim().split('\n');
    expect(lines[0]).toBe(
      'charge_id,job_id,attempt,task_id,tenant,batch_id,resolution,billed_ms,micro_usd,price_version,kind,day,charged_at,archived',
    );
    expect(lines).toHaveLength(3);
    expect(lines.slice(1).every((l) => l.split(',')[4] === 'globex')).toBe(true);
    const bad = await get(s, '/v1/costs/items?from=2026-13-01', admin);
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('from');
  });

  it('audits the books against the provider: a billed task with no charge is found, with its money', async () => {
    const s = await start({ auth: true });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await s.submit(job(s, i))).id);
    for (const id of ids) await s.waitTerminal(id, 20_000);
    let report = JSON.parse((await get(s, '/v1/costs/audit', admin)).text);
    expect(report).toMatchObject({
      complete: true,
      unaccounted_micro_usd: 0,
      difference_micro_usd: 0,
      tasks_without_charge: [],
      charges_without_task: [],
      mismatched: [],
    });
    expect(report.provider.billed_tasks).toBe(3);

    // A task of ours (our receiver, a valid token) that the ledger never heard of: a job whose
    // record was lost after its task was sent. The provider bills it; the audit must say so.
    const lost = newJobId();
    const input = { images: [s.fixture('person-a.png')], resolution: '720p' };
    const task = await s.client.run({
      input: { ...input, video: s.fixture('clip-2s-faststart.mp4') } as never,
      webhook: webhookUrl(s.apiUrl, s.secret, lost, 1),
    });
    await waitFor(
      async () =>
        ['completed', 'failed'].includes((await s.client.getStatus(task.id)).status as string) || undefined,
      {
        what: 'the stray task finished',
      },
    ).catch(() => undefined);
    await waitFor(async () => (await s.emulatorState()).bill.tasks.some((t) => t.task_id === task.id), {
      what: 'the stray task billed',
    });
    // Another client's task on the same account is not ours, whatever it cost.
    await s.client.run({
      input: { ...input, video: s.fixture('clip-3s.mov') } as never,
      webhook: 'http://elsewhere.example.com/hook',
    });
    report = JSON.parse((await get(s, '/v1/costs/audit', admin)).text);
    const billedStray = (await s.emulatorState()).bill.tasks.find((t) => t.task_id === task.id)!.micro_usd;
    expect(report.tasks_without_charge).toEqual([
      { task_id: task.id, job_id: lost, attempt: '1', seconds: 2, micro_usd: billedStray },
    ]);
    expect(report.unaccounted_micro_usd).toBe(billedStray);
    expect(report.difference_micro_usd).toBe(-billedStray);
    // Admin only.
    const acme = await keyFor(s, 'acme');
    expect((await get(s, '/v1/costs/audit', acme)).status).toBe(403);
    expect((await get(s, '/v1/costs/audit?from=yesterday', admin)).status).toBe(400);
  });

  it.skipIf(!privatePostgresAvailable())(
    'keeps the live path going while PostgreSQL is down, shows the backlog, and drains it when it is back',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'recast-pg-outage-'));
      let server: PrivatePostgres = await startPrivatePostgres({ dir });
      const port = server.port;
      onCleanup(async () => {
        await server.stop().catch(() => undefined);
        await rm(dir, { recursive: true, force: true });
      });
      await migrateDatabase(server.url, testLogger());
      const s = await start({
        metrics: true,
        api: { DATABASE_URL: server.url },
        worker: { DATABASE_URL: server.url },
      });
      await s.waitTerminal((await s.submit(job(s, 0))).id, 20_000);
      await waitFor(async () => (await s.redis.zcard(s.keys.outboxJobs())) === 0, { what: 'archived' });

      await server.stop();
      const ids: string[] = [];
      for (let i = 1; i <= 5; i++) ids.push((await s.submit(job(s, i))).id);
      for (const id of ids) expect((await s.waitTerminal(id, 20_000)).state).toBe('completed');
      const ready = await fetch(`${s.apiUrl}/readyz`);
      expect(ready.status).toBe(200);
      const readyBody = (await ready.json()) as { redis: string; database: string };
      expect(readyBody.redis).toBe('ok');
      expect(readyBody.database).not.toBe('ok');
      const stats = JSON.parse((await get(s, '/v1/stats', {})).text);
      // The five wait on the outbox (a record noted again after it finished may join them).
      expect(stats.archive.backlog.jobs).toBeGreaterThanOrEqual(5);
      for (const id of ids) expect(await s.redis.zscore(s.keys.outboxJobs(), id)).not.toBeNull();
      expect(stats.archive.backlog.charges).toBe(5);
      const metrics = await (await fetch(`${s.metrics!.worker}/metrics`)).text();
      expect(metrics).toMatch(/recast_archive_backlog\{[^}]*kind="charges"[^}]*\} 5/);
      const costs = JSON.parse((await get(s, '/v1/costs', {})).text);
      expect(costs.source).toBe('live');
      expect(costs.total.jobs).toBe(6);
      const items = await get(s, '/v1/costs/items', {});
      expect(items.status).toBe(503);

      server = await startPrivatePostgres({ dir, port });
      await waitFor(
        async () => {
          const b = JSON.parse((await get(s, '/v1/stats', {})).text).archive.backlog;
          return b.jobs + b.charges === 0;
        },
        { timeoutMs: 20_000, what: 'the backlog drained' },
      );
      const after = JSON.parse((await get(s, '/v1/costs', {})).text);
      expect(after.source).toBe('history');
      expect(after.total).toEqual(costs.total);
      const client = new pg.Client({ connectionString: server.url });
      await client.connect();
      const { rows } = await client.query('SELECT count(*)::int AS n FROM recast_jobs');
      await client.end();
      expect(rows[0].n).toBe(6);
    },
  );
});
