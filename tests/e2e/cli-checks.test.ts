import { execFile, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type System, systemPerTest } from './system.js';

// What `recast submit` checks before it sends anything: local paths (inside the manifest's
// directory or an --allow-path), every row error at once, the deployment's line and row limits;
// and what it says when the server answers early or a batch waits for money.
const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURES = join(ROOT, 'apps/emulator/fixtures');
const dir = mkdtempSync(join(tmpdir(), 'recast-cli-checks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const { start, onCleanup } = systemPerTest();

function recast(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'apps/cli/src/main.ts', ...args],
      {
        cwd: ROOT,
        env: { ...process.env, RECAST_URL: '', RECAST_API_KEY: '', RECAST_TENANT: '', ...env },
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) =>
        done({ code: typeof err?.code === 'number' ? err.code : err ? -1 : 0, stdout, stderr }),
    );
  });
}

/** A proxy in front of the API that counts what reaches it, by method and path. */
async function countingProxy(target: string) {
  const seen: string[] = [];
  const { port } = new URL(target);
  const proxy = createServer((req, res) => {
    seen.push(`${req.method} ${req.url?.split('?')[0]}`);
    const upstream = httpRequest(
      { host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        proxy.closeAllConnections();
        proxy.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, seen };
}

const jsonl = (rows: unknown[]) => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;
const countOf = (seen: string[], what: string) => seen.filter((s) => s === what).length;
const postsOf = async (s: System, route: string) =>
  (await s.emulatorState()).requests.filter((r) => r.route === route && r.method === 'POST').length;

describe('recast submit: local paths', () => {
  it('takes local files only inside the manifest directory or an --allow-path, listing every bad row first', async () => {
    const s = await start({ noWorker: true });
    const project = join(dir, 'project');
    const outside = join(dir, 'outside');
    mkdirSync(join(project, 'clips'), { recursive: true });
    mkdirSync(outside, { recursive: true });
    copyFileSync(join(FIXTURES, 'clip-2s-faststart.mp4'), join(project, 'clips/a.mp4'));
    copyFileSync(join(FIXTURES, 'person-a.png'), join(project, 'p.png'));
    copyFileSync(join(FIXTURES, 'person-b.jpg'), join(outside, 'secret.jpg'));
    // A link inside the project to a file outside it is outside.
    symlinkSync(join(outside, 'secret.jpg'), join(project, 'link.jpg'));
    const file = join(project, 'rows.jsonl');
    writeFileSync(
      file,
      jsonl([
        { custom_id: 'good', video: './clips/a.mp4', images: ['p.png'] },
        { custom_id: 'passwd', video: 'file:///etc/passwd', images: ['p.png'] },
        { custom_id: 'dotdot', video: './clips/a.mp4', images: ['../outside/secret.jpg'] },
        { custom_id: 'link', video: './clips/a.mp4', images: ['p.png', 'link.jpg'] },
        { custom_id: 'missing', video: './nope.mp4', images: ['p.png'] },
        { custom_id: 'turbo', video: './clips/a.mp4', images: ['p.png'], turbo: 'yes' },
      ]),
    );
    const env = { RECAST_URL: s.apiUrl };
    const refused = await recast(['submit', file], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('nothing was uploaded');
    for (const line of [
      /line 2 \(custom_id passwd\): video: \/etc\/passwd is outside the manifest's directory/,
      /line 3 \(custom_id dotdot\): images\.0: .*secret\.jpg is outside the manifest's directory/,
      /line 4 \(custom_id link\): images\.1: .*link\.jpg is outside the manifest's directory/,
      /line 5 \(custom_id missing\): video: cannot read .*nope\.mp4: ENOENT/,
      /line 6 \(custom_id turbo\): turbo: must be a boolean/,
    ]) {
      expect(refused.stderr).toMatch(line);
    }
    // Nothing was read for the API, nothing uploaded, nothing remembered.
    expect(await postsOf(s, '/files')).toBe(0);
    expect(existsSync(`${file}.uploads.json`)).toBe(false);

    // --allow-path lets the outside directory in: the links and ../ rows pass, the rest do not.
    const allowed = await recast(['submit', file, '--allow-path', outside, '--json'], env);
    expect(allowed.code).toBe(2);
    const issues = JSON.parse(allowed.stderr).error.issues as { line: number }[];
    expect(issues.map((i) => i.line)).toEqual([2, 5, 6]);
    expect(await postsOf(s, '/files')).toBe(0);

    writeFileSync(
      file,
      jsonl([
        { custom_id: 'good', video: './clips/a.mp4', images: ['p.png'] },
        { custom_id: 'link', video: './clips/a.mp4', images: ['link.jpg', join(outside, 'secret.jpg')] },
      ]),
    );
    const ok = await recast(['submit', file, '--allow-path', outside], env);
    expect(ok.code).toBe(0);
    expect(await postsOf(s, '/files')).toBe(3);
  });
});

describe('recast submit: limits and early answers', () => {
  it('refuses a line or row count over the deployment limits before sending a byte of the manifest', async () => {
    const s = await start({ noWorker: true, api: { MANIFEST_MAX_ROWS: '5' } });
    const proxy = await countingProxy(s.apiUrl);
    const row = {
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
      duration_seconds: 2,
    };
    const hugeLine = join(dir, 'huge-line.jsonl');
    writeFileSync(hugeLine, jsonl([row, { ...row, instruction_prompt: 'x'.repeat(5 * 1024 * 1024) }]));
    const line = await recast(['submit', hugeLine], { RECAST_URL: proxy.url });
    expect(line.code).toBe(7);
    expect(line.stderr).toContain('manifest line 2 exceeds 65536 bytes (MANIFEST_MAX_LINE_BYTES)');
    expect(line.stderr).not.toMatch(/EPIPE|cannot reach/);
    const tooMany = join(dir, 'too-many.jsonl');
    writeFileSync(tooMany, jsonl(Array.from({ length: 6 }, () => row)));
    const rows = await recast(['submit', tooMany], { RECAST_URL: proxy.url });
    expect(rows.code).toBe(7);
    expect(rows.stderr).toContain('manifest exceeds 5 rows (MANIFEST_MAX_ROWS)');
    expect(countOf(proxy.seen, 'POST /v1/batches')).toBe(0);
    expect(countOf(proxy.seen, 'GET /v1/limits')).toBe(2);
  });

  it("shows the server's early answer to a large upload, never a broken pipe", async () => {
    const s = await start({ noWorker: true });
    const row = {
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
      duration_seconds: 2,
    };
    const big = join(dir, 'big.jsonl');
    writeFileSync(big, jsonl(Array.from({ length: 40_000 }, (_, i) => ({ ...row, seed: i }))));
    // Callbacks are off here: the API refuses the parameter before it reads the body.
    for (let run = 0; run < 4; run++) {
      const r = await recast(['submit', big, '--callback-url', 'https://hooks.example.com/done'], {
        RECAST_URL: s.apiUrl,
      });
      expect({ run, code: r.code, stderr: r.stderr }).toMatchObject({
        code: 3,
        stderr: expect.stringContaining('callbacks are not enabled'),
      });
    }
  });
});

describe('recast submit --watch', () => {
  it('says what a batch waits for', async () => {
    const s = await start({ worker: { PROVIDER_SUBMITS_PER_WINDOW: '0' } });
    const file = join(dir, 'capped.jsonl');
    // 3 rows of 2 s at 720p: $0.06 each, over the batch's $0.05 cap, so all three wait.
    writeFileSync(
      file,
      jsonl(
        Array.from({ length: 3 }, () => ({
          video: s.fixture('clip-2s-faststart.mp4'),
          images: [s.fixture('person-a.png')],
          duration_seconds: 2,
        })),
      ),
    );
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'apps/cli/src/main.ts', 'submit', file, '--max-cost-usd', '0.05', '--watch'],
      { cwd: ROOT, env: { ...process.env, RECAST_URL: s.apiUrl, RECAST_API_KEY: '', RECAST_TENANT: '' } },
    );
    onCleanup(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    const said = await new Promise<string>((resolve, reject) => {
      let stderr = '';
      const timer = setTimeout(() => reject(new Error(`no waiting line in: ${stderr}`)), 30_000);
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        // The first lines may come while the rows are still being parked: wait for all three.
        const line = stderr.split('\n').find((l) => l.includes('3 waiting for budget'));
        if (line) {
          clearTimeout(timer);
          resolve(line);
        }
      });
    });
    expect(said).toMatch(/3 waiting for budget \(batch cap \$0\.05 reached\): 0\/3 done/);
    // Instead of an ETA, why nothing moves.
    expect(said).toMatch(/waiting for money: 3 parked on batch:bat_\S+ lifetime$/);
    child.kill('SIGINT');
  });
});
