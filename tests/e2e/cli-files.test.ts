import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type System, systemPerTest } from './system.js';

// As in cli.test.ts: the CLI is a child process, spawned asynchronously (the system runs here).
const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURES = join(ROOT, 'apps/emulator/fixtures');
const dir = mkdtempSync(join(tmpdir(), 'recast-cli-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const { start } = systemPerTest();

function recast(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'apps/cli/src/main.ts', ...args],
      { cwd: ROOT, env: { ...process.env, RECAST_URL: '', RECAST_API_KEY: '', RECAST_TENANT: '', ...env } },
      (err, stdout, stderr) =>
        done({ code: typeof err?.code === 'number' ? err.code : err ? -1 : 0, stdout, stderr }),
    );
  });
}

const requestsTo = async (s: System, route: string, method: string) =>
  (await s.emulatorState()).requests.filter((r) => r.route === route && r.method === method).length;

describe('recast submit with local files', () => {
  it('uploads each local file once, submits the rows with their uris, and skips them when run again', async () => {
    const s = await start({ emulator: { stepMs: 5 }, worker: { PROVIDER_SUBMITS_PER_WINDOW: '0' } });
    const env = { RECAST_URL: s.apiUrl };
    const project = join(dir, 'project');
    mkdirSync(join(project, 'clips'), { recursive: true });
    mkdirSync(join(project, 'people'), { recursive: true });
    copyFileSync(join(FIXTURES, 'clip-2s-faststart.mp4'), join(project, 'clips/a.mp4'));
    copyFileSync(join(FIXTURES, 'clip-5s-moov-at-end.mp4'), join(project, 'clips/b.mp4'));
    copyFileSync(join(FIXTURES, 'person-a.png'), join(project, 'people/a.png'));
    // The same bytes under a second name: one upload.
    copyFileSync(join(FIXTURES, 'person-a.png'), join(project, 'people/a-copy.png'));
    const rows = [
      { custom_id: 'r1', video: './clips/a.mp4', images: ['people/a.png'] },
      { custom_id: 'r2', video: 'clips/b.mp4', images: ['./people/a-copy.png', s.fixture('person-b.jpg')] },
      { custom_id: 'r3', video: s.fixture('clip-2s-faststart.mp4'), images: [join(project, 'people/a.png')] },
    ];
    const file = join(project, 'rows.jsonl');
    writeFileSync(file, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);

    const first = await recast(['submit', file, '--watch'], env);
    expect(first.stderr).toContain('uploading 3 local file(s)');
    expect(first.code).toBe(0);
    const listed = (await (await fetch(`${s.apiUrl}/v1/batches`)).json()) as {
      data: { id: string; status: string; counts: { completed: number } }[];
    };
    const batch = listed.data[0]!;
    expect(batch).toMatchObject({ status: 'completed', counts: { completed: 3 } });
    expect(await requestsTo(s, '/files', 'POST')).toBe(3);
    expect(existsSync(`${file}.uploads.json`)).toBe(true);

    // The jobs run on the provider's copies, billed on each clip's real duration.
    const results = await fetch(`${s.apiUrl}/v1/batches/${batch.id}/results`);
    const lines = (await results.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { custom_id: string; cost_micro_usd: number });
    expect(lines.map((l) => [l.custom_id, l.cost_micro_usd])).toEqual([
      ['r1', 60_000],
      ['r2', 150_000],
      ['r3', 60_000],
    ]);

    // Run again: the state file knows every file, nothing is uploaded or even asked for.
    const again = await recast(['submit', file], env);
    expect(again.code).toBe(0);
    expect(again.stderr).not.toContain('uploading');
    expect(await requestsTo(s, '/files', 'POST')).toBe(3);

    // Without the state file, the API's index still knows the hashes.
    rmSync(`${file}.uploads.json`);
    const fresh = await recast(['submit', file], env);
    expect(fresh.code).toBe(0);
    expect(await requestsTo(s, '/files', 'POST')).toBe(3);
    expect(JSON.parse(readFileSync(`${file}.uploads.json`, 'utf8')).files).toBeTruthy();

    // Days later: the API has forgotten its uploads (UPLOAD_REUSE_SECONDS), the state file has
    // not. Its old uris are confirmed with the API first, which no longer knows them: sent again.
    const statePath = `${file}.uploads.json`;
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as {
      files: Record<string, { uploaded_at: string }>;
    };
    for (const entry of Object.values(state.files))
      entry.uploaded_at = new Date(Date.now() - 3 * 86_400_000).toISOString();
    writeFileSync(statePath, JSON.stringify(state));
    for (const key of await s.redis.keys(`${s.prefix}:upload:*`)) await s.redis.del(key);
    const later = await recast(['submit', file], env);
    expect(later.code).toBe(0);
    expect(later.stderr).toContain('uploading 3 local file(s)');
    expect(await requestsTo(s, '/files', 'POST')).toBe(6);
  });

  it('rewrites the local paths of a CSV manifest, keeping every row on its line', async () => {
    const s = await start({ noWorker: true });
    const project = join(dir, 'csv-project');
    mkdirSync(join(project, 'clips'), { recursive: true });
    copyFileSync(join(FIXTURES, 'clip-5s-moov-at-end.mp4'), join(project, 'clips/a.mp4'));
    copyFileSync(join(FIXTURES, 'person-a.png'), join(project, 'a.png'));
    copyFileSync(join(FIXTURES, 'person-b.jpg'), join(project, 'b.jpg'));
    const file = join(project, 'rows.csv');
    writeFileSync(
      file,
      [
        'custom_id,video,images,resolution',
        'c1,./clips/a.mp4,a.png | b.jpg,720p',
        '',
        `"c2, quoted",clips/a.mp4,"${s.fixture('person-c.webp')}|a.png",1080p`,
        'c3,./clips/a.mp4,a.png,4k',
        '',
      ].join('\n'),
    );
    const quote = await recast(['submit', file, '--dry-run', '--json'], { RECAST_URL: s.apiUrl });
    expect(quote.code).toBe(3);
    const body = JSON.parse(quote.stdout) as {
      rows: number;
      invalid_rows: number;
      estimated_micro_usd: number;
      errors: { line: number; custom_id?: string; field?: string }[];
    };
    // c1: 5 s at 720p, c2: 5 s at 1080p, measured from the uploaded clip; c3 refused on its own line.
    expect(body).toMatchObject({ rows: 2, invalid_rows: 1, estimated_micro_usd: 450_000 });
    expect(body.errors).toEqual([expect.objectContaining({ line: 5, custom_id: 'c3' })]);
    expect(await requestsTo(s, '/files', 'POST')).toBe(3);
  });

  it('exits 2 naming the line and field of a missing local file, before uploading anything', async () => {
    const s = await start({ noWorker: true });
    const file = join(dir, 'missing.jsonl');
    copyFileSync(join(FIXTURES, 'person-a.png'), join(dir, 'p.png'));
    writeFileSync(
      file,
      `${JSON.stringify({ video: s.fixture('clip-2s-faststart.mp4'), images: ['p.png'] })}\n` +
        `${JSON.stringify({ video: './nope.mp4', images: ['p.png'] })}\n`,
    );
    const run = await recast(['submit', file], { RECAST_URL: s.apiUrl });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/line 2: video: cannot read .*nope\.mp4/);
    expect(await requestsTo(s, '/files', 'POST')).toBe(0);
  });
});
