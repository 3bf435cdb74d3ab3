import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { waitFor } from '@recast/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, type System, systemPerTest } from './system.js';

// The CLI runs as a child process, the way people run it; the system it drives runs in this
// process, so children are always spawned asynchronously (a sync spawn would block the server).
const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = 'apps/cli/src/main.ts';
const dir = mkdtempSync(join(tmpdir(), 'recast-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const { start } = systemPerTest();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function recast(
  args: string[],
  env: Record<string, string> = {},
  cwd = ROOT,
  entry = ['--import', 'tsx', MAIN],
) {
  return new Promise<Run>((done) => {
    execFile(
      process.execPath,
      [...entry, ...args],
      { cwd, env: { ...process.env, RECAST_URL: '', RECAST_API_KEY: '', RECAST_TENANT: '', ...env } },
      (err, stdout, stderr) =>
        done({ code: typeof err?.code === 'number' ? err.code : err ? -1 : 0, stdout, stderr }),
    );
  });
}

/** `recast … > file`: stdout is a real file descriptor, as with a shell redirection. */
async function recastTo(file: string, args: string[], env: Record<string, string>): Promise<Run> {
  const fd = openSync(file, 'w');
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', fd, 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stdout: readFileSync(file, 'utf8'), stderr };
}

function rows(s: System, n: number) {
  return Array.from({ length: n }, (_, i) => ({
    custom_id: `row-${i}`,
    video: s.fixture('clip-2s-faststart.mp4'),
    images: [s.fixture('person-a.png')],
    resolution: i % 4 === 0 ? '1080p' : '720p',
    duration_seconds: 2,
  }));
}

function manifest(name: string, lines: (object | string)[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n`);
  return path;
}

const FAST = { emulator: { stepMs: 5 }, worker: { PROVIDER_SUBMITS_PER_WINDOW: '0' } };
const SECRET_KEY = 'rk_live_do_not_print_me_0123456789';

describe('recast CLI', () => {
  it('documents every command and exit code; the bin shim runs from any directory', async () => {
    const help = await recast(['--help'], {}, tmpdir(), [join(ROOT, 'apps/cli/bin/recast.js')]);
    expect(help.code).toBe(0);
    for (const word of [
      'submit',
      'batches',
      'status',
      'results',
      'cancel',
      'retry',
      'RECAST_URL',
      'Exit codes',
    ]) {
      expect(help.stdout).toContain(word);
    }
    expect(help.stdout).toMatch(/7 +payload too large/);
    const submitHelp = await recast(['submit', '--help']);
    expect(submitHelp.stdout).toContain('--max-cost-usd');
  });

  it('exits 2 on usage errors, before contacting anyone', async () => {
    const ok = manifest('usage.jsonl', [{}]);
    const cases = [
      [],
      ['submit'],
      ['frobnicate'],
      ['submit', ok, '--mode', 'bogus'],
      ['submit', ok, '--defaults', 'not json'],
      ['submit', ok, '--metadata', '[1]'],
      ['submit', ok, '--max-cost-usd', 'ten'],
      ['submit', join(dir, 'manifest.txt')],
      ['submit', join(dir, 'missing.jsonl')],
      ['batches', '--limit', '0'],
      ['batches', '--status', 'sleeping'],
      ['status', 'bat_x', '--url', 'ftp://x'],
    ];
    const runs = await Promise.all(cases.map((args) => recast(args, { RECAST_URL: 'http://127.0.0.1:9' })));
    runs.forEach((r, i) => {
      expect({ args: cases[i], code: r.code }).toEqual({ args: cases[i], code: 2 });
      expect(r.stderr).not.toBe('');
    });
  });

  it('exits 6 when the server is unreachable or answers 5xx, sends key and tenant, never prints the key', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: { code: 'REDIS_UNAVAILABLE', message: 'storage is unavailable; retry shortly' },
        }),
      );
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const failing = await recast(['status', 'bat_x', '--tenant', 'ads'], {
      RECAST_URL: url,
      RECAST_API_KEY: SECRET_KEY,
    });
    server.close();
    await once(server, 'close');
    expect(failing.code).toBe(6);
    expect(failing.stderr).toContain('REDIS_UNAVAILABLE');
    expect(seen[0]).toMatchObject({ authorization: `Bearer ${SECRET_KEY}`, 'x-tenant': 'ads' });

    const gone = await recast(['status', 'bat_x', '--json', '--api-key', SECRET_KEY], { RECAST_URL: url });
    expect(gone.code).toBe(6);
    expect(gone.stdout).toBe('');
    expect(JSON.parse(gone.stderr)).toMatchObject({ error: { exit_code: 6 } });
    for (const r of [failing, gone]) expect(r.stdout + r.stderr).not.toContain(SECRET_KEY);
  });

  it('quotes, submits, watches, lists, shows and streams the results of a batch', async () => {
    const s = await start(FAST);
    const env = { RECAST_URL: s.apiUrl, RECAST_API_KEY: SECRET_KEY };
    const file = manifest('ok.jsonl', rows(s, 20));

    const quote = await recast(['submit', file, '--dry-run'], env);
    expect(quote.code).toBe(0);
    // 5 rows × 2 s at 1080p ($0.06/s) and 15 × 2 s at 720p ($0.03/s).
    expect(quote.stdout).toContain('20 valid, 0 invalid');
    expect(quote.stdout).toMatch(/1080p +5 +10\.0 +\$0\.60/);
    expect(quote.stdout).toMatch(/720p +15 +30\.0 +\$0\.90/);
    expect(quote.stdout).toMatch(/total +20 +40\.0 +\$1\.50/);
    // When it would be done if sent now: nothing has completed yet, so at the documented speed.
    expect(quote.stdout).toMatch(/finish +if submitted now: ETA .+ UTC \(in .+\), default speed/);
    const overBudget = await recast(['submit', file, '--dry-run', '--max-cost-usd', '1'], env);
    expect(overBudget.stdout).toMatch(/batch +lifetime +\$1\.00 +\$1\.00 +NO/);
    expect(overBudget.stderr).toContain('does not fit every budget');
    const quoteJson = await recast(['submit', file, '--dry-run', '--json'], env);
    expect(JSON.parse(quoteJson.stdout)).toMatchObject({
      object: 'batch_quote',
      rows: 20,
      estimated_micro_usd: 1_500_000,
    });
    expect(JSON.parse((await recast(['batches', '--json'], env)).stdout).data).toEqual([]);

    const watched = await recast(
      ['submit', file, '--watch', '--json', '--name', 'cli-flow', '--max-cost-usd', '10'],
      env,
    );
    expect(watched.code).toBe(0);
    const batch = JSON.parse(watched.stdout);
    expect(batch).toMatchObject({ name: 'cli-flow', status: 'completed', counts: { completed: 20 } });

    const out = join(dir, 'out.jsonl');
    const res = await recastTo(out, ['results', batch.id], env);
    expect(res.code).toBe(0);
    const lines = res.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.custom_id)).toEqual(rows(s, 20).map((r) => r.custom_id));
    expect(lines.every((l) => l.state === 'completed' && l.output_video_url)).toBe(true);
    const csv = await recast(['results', batch.id, '--csv'], env);
    expect(csv.stdout.trim().split('\r\n')).toHaveLength(21);
    expect((await recast(['results', batch.id, '--failed'], env)).stdout).toBe('');

    const status = await recast(['status', batch.id], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/status +completed/);
    expect(status.stdout).toContain('20/20 done');
    expect(status.stdout).toContain('max $10.000000');
    expect(JSON.parse((await recast(['status', batch.id, '--json'], env)).stdout)).toMatchObject({
      id: batch.id,
    });

    const plain = await recast(['submit', file, '--name', 'second'], env);
    expect(plain.code).toBe(0);
    expect(plain.stdout.trim()).toMatch(/^bat_/);
    const list = await recast(['batches'], env);
    expect(list.stdout.split('\n')[0]).toMatch(/^ID +NAME +STATUS +DONE +SPENT$/);
    expect(list.stdout).toMatch(new RegExp(`${batch.id} +cli-flow +completed +20/20 +\\$\\d`));
    expect(list.stdout).toContain(plain.stdout.trim());
    const completedOnly = JSON.parse(
      (await recast(['batches', '--status', 'cancelled', '--json'], env)).stdout,
    );
    expect(completedOnly.data).toEqual([]);

    // Unknown ids, and another tenant's batch, are not found.
    for (const args of [
      ['status', 'bat_01ARZ3NDEKTSV4RRFFQ69G5FAV'],
      ['results', 'nope'],
      ['status', batch.id, '--tenant', 'x'],
    ]) {
      expect((await recast(args, env)).code).toBe(4);
    }
    for (const r of [quote, watched, status, list]) expect(r.stdout + r.stderr).not.toContain(SECRET_KEY);
  }, 60_000);

  it('exits 3 on a rejected manifest and names every bad line; a dry run says the same', async () => {
    const s = await start({ noWorker: true });
    const good = rows(s, 3);
    const file = manifest('bad.jsonl', [
      good[0]!,
      '{"video": "not json',
      { ...good[1], turbo: 'yes' },
      { ...good[2], video: 'ftp://x/y.mp4' },
      { ...good[2], custom_id: 'five', images: Array(5).fill(s.fixture('person-a.png')) },
    ]);
    const env = { RECAST_URL: s.apiUrl };
    for (const args of [
      ['submit', file],
      ['submit', file, '--dry-run'],
    ]) {
      const r = await recast(args, env);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/line 2: \(line\): /);
      expect(r.stderr).toContain('line 3 (custom_id row-1): turbo: ');
      expect(r.stderr).toContain('line 4 (custom_id row-2): video: ');
      expect(r.stderr).toContain('line 5 (custom_id five): images');
    }
    const json = await recast(['submit', file, '--json'], env);
    expect(json.code).toBe(3);
    const issues = JSON.parse(json.stderr).error.issues as { line: number }[];
    expect(new Set(issues.map((i) => i.line))).toEqual(new Set([2, 3, 4, 5]));
    // Partial mode runs the good rows and lists the bad ones.
    const partial = await recast(['submit', file, '--mode', 'partial'], env);
    expect(partial.code).toBe(0);
    expect(partial.stderr).toContain('4 invalid rows skipped');
    // A batch parameter the API refuses is a validation failure too.
    const badCallback = await recast(['submit', file, '--callback-url', 'http://127.0.0.1:1/hook'], env);
    expect(badCallback.code).toBe(3);
  });

  it('exits 7 on a manifest over the size limit', async () => {
    const s = await start({ noWorker: true, api: { MANIFEST_MAX_BYTES: '4096' } });
    const env = { RECAST_URL: s.apiUrl };
    const small = await recast(['submit', manifest('big.jsonl', rows(s, 100))], env);
    expect(small.code).toBe(7);
    expect(small.stderr).toContain('MANIFEST_MAX_BYTES');
    // Far over the limit: the API answers before the upload is done.
    const huge = await recast(['submit', manifest('huge.jsonl', rows(s, 20_000))], env);
    expect({ code: huge.code, stderr: huge.stderr }).toMatchObject({ code: 7 });
  });

  it('cancels a running batch; a watch on it ends with exit 5', async () => {
    const s = await start({
      emulator: { stepMs: 200 },
      worker: { PROVIDER_MAX_IN_FLIGHT: '4', PROVIDER_SUBMITS_PER_WINDOW: '0' },
    });
    const env = { RECAST_URL: s.apiUrl };
    const watching = recast(['submit', manifest('slow.jsonl', rows(s, 40)), '--watch', '--json'], env);
    const id = await waitFor(async () => {
      const list = (await (await fetch(`${s.apiUrl}/v1/batches`)).json()) as {
        data: { id: string; counts: { submitted: number; running: number } }[];
      };
      // At the provider: submitted (no webhook until the end) or seen running by a poll.
      const first = list.data[0];
      return first && first.counts.submitted + first.counts.running > 0 ? first.id : undefined;
    });
    const cancelled = await recast(['cancel', id], env);
    expect(cancelled.code).toBe(0);
    const before = Number(/(\d+) cancelled before any spend/.exec(cancelled.stdout)?.[1]);
    expect(before).toBeGreaterThan(20);
    expect(cancelled.stdout).toMatch(/\d+ being cancelled at the provider/);
    const watched = await watching;
    expect(watched.code).toBe(5);
    expect(JSON.parse(watched.stdout)).toMatchObject({
      id,
      status: 'cancelled',
      cost: { reserved_micro_usd: 0 },
    });
  }, 60_000);

  it('retries the failed rows of a batch to completion', async () => {
    const s = await start({ ...FAST, emulator: { stepMs: 5, faults: { failureRate: 1 } } });
    const env = { RECAST_URL: s.apiUrl };
    const failed = await recast(['submit', manifest('fail.jsonl', rows(s, 20)), '--watch', '--json'], env);
    expect(failed.code).toBe(5);
    const batch = JSON.parse(failed.stdout);
    expect(batch).toMatchObject({ status: 'completed_with_errors', counts: { failed: 20 } });
    const failedRows = await recast(['results', batch.id, '--failed'], env);
    expect(failedRows.stdout.trim().split('\n')).toHaveLength(20);

    await s.setFaults({ failureRate: 0 });
    const retried = await recast(['retry', batch.id, '--watch', '--json'], env);
    expect(retried.code).toBe(0);
    expect(JSON.parse(retried.stdout)).toMatchObject({
      status: 'completed',
      counts: { completed: 20, failed: 0 },
    });
    const again = await recast(['retry', batch.id], env);
    expect(again.stdout).toContain('0 failed rows queued again');
  }, 60_000);

  it('creates, lists and revokes API keys with an admin key; exit 8 when a key may not do something', async () => {
    const s = await start({ auth: true, noWorker: true });
    const admin = { RECAST_URL: s.apiUrl, RECAST_API_KEY: ADMIN_KEY };
    const created = await recast(
      ['keys', 'create', 'ads', '--name', 'ads viewer', '--role', 'viewer'],
      admin,
    );
    expect(created.code).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^rk_[A-Za-z0-9_]+$/);
    expect(created.stderr).toContain('shown only this once');
    const list = await recast(['keys', 'list'], admin);
    expect(list.stdout).toMatch(/key_\w+ +ads viewer +viewer +ads +rk_/);
    expect(list.stdout).not.toContain(key);

    const viewer = { RECAST_URL: s.apiUrl, RECAST_API_KEY: key };
    expect((await recast(['batches'], viewer)).code).toBe(0);
    const submit = await recast(['submit', manifest('viewer.jsonl', rows(s, 1))], viewer);
    expect(submit.code).toBe(8);
    expect(submit.stderr).toContain('FORBIDDEN');
    expect((await recast(['keys', 'list'], viewer)).code).toBe(8);
    const id = /key_\w+/.exec(list.stdout)?.[0] as string;
    const json = JSON.parse((await recast(['keys', 'list', '--json'], admin)).stdout) as {
      data: { id: string; name: string }[];
    };
    const viewerId = json.data.find((k) => k.name === 'ads viewer')?.id ?? id;
    expect((await recast(['keys', 'revoke', viewerId], admin)).code).toBe(0);
    expect((await recast(['batches'], viewer)).code).toBe(8);
    expect((await recast(['batches'], { RECAST_URL: s.apiUrl })).code).toBe(8);
    expect((await recast(['keys', 'create', 'ads', '--name', 'x', '--role', 'root'], admin)).code).toBe(2);
  });
});
