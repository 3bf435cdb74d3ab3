import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { JobView } from '@recast/core/contract';
import { waitFor } from '@recast/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { type System, systemPerTest } from './system.js';

const FIXTURES = resolve(import.meta.dirname, '../../apps/emulator/fixtures');
const fixtureBytes = (name: string) => readFileSync(join(FIXTURES, name));
const scratch = mkdtempSync(join(tmpdir(), 'recast-files-e2e-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const { start } = systemPerTest();

/** A private temp dir for the API's uploads, so a test can see that nothing is left in it. */
function uploadDir(): string {
  return mkdtempSync(join(scratch, 'uploads-'));
}

interface FormFile {
  field: string;
  name: string;
  bytes: Buffer;
  type?: string;
}

function form(job: Record<string, unknown>, files: FormFile[]): FormData {
  const data = new FormData();
  data.set('job', JSON.stringify(job));
  for (const f of files) {
    data.append(
      f.field,
      new Blob([new Uint8Array(f.bytes)], { type: f.type ?? 'application/octet-stream' }),
      f.name,
    );
  }
  return data;
}

async function post(s: System, path: string, body: FormData | string, headers: Record<string, string> = {}) {
  const res = await fetch(`${s.apiUrl}${path}`, { method: 'POST', body, headers });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & JobView };
}

/** Keys of this system's Redis prefix that hold jobs or the upload index. */
async function leftovers(s: System): Promise<string[]> {
  const found: string[] = [];
  for (const pattern of [`{${s.prefix}}:job:*`, `${s.prefix}:upload:*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await s.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      found.push(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
  return found;
}

const postsOf = async (s: System, route: string, method = 'POST') =>
  (await s.emulatorState()).requests.filter((r) => r.route === route && r.method === method).length;

describe('file inputs (multipart, data: URIs) through the emulator', () => {
  it('runs a multipart job with a real MP4 and PNG to completed, billed on the probed duration', async () => {
    const dir = uploadDir();
    const s = await start({ api: { UPLOAD_TMP_DIR: dir } });
    const res = await post(
      s,
      '/v1/jobs',
      form({ resolution: '720p', instruction_prompt: 'swap' }, [
        { field: 'video', name: 'clip.mp4', bytes: fixtureBytes('clip-5s-moov-at-end.mp4') },
        { field: 'images[]', name: 'a.png', bytes: fixtureBytes('person-a.png') },
        { field: 'images[]', name: 'b.jpg', bytes: fixtureBytes('person-b.jpg') },
      ]),
    );
    expect(res.status).toBe(202);
    // The uploaded video was measured from its bytes, not fetched back.
    expect(res.body.estimate).toMatchObject({ seconds: 5, source: 'probe' });
    expect(res.body.input.video).toMatch(new RegExp(`^${s.emulatorUrl}/files/`));
    expect(res.body.input.images).toHaveLength(2);
    const done = await s.waitTerminal(res.body.id);
    expect(done).toMatchObject({ state: 'completed', cost: { seconds: 5, micro_usd: 150_000 } });
    const state = await s.emulatorState();
    expect(state.files).toMatchObject({ records: 3, uploaded: 3 });
    expect(state.bill.total_micro_usd).toBe(150_000);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('runs a JSON job whose files are data: URIs', async () => {
    const s = await start();
    const dataUri = (name: string, type: string) =>
      `data:${type};base64,${fixtureBytes(name).toString('base64')}`;
    const res = await post(
      s,
      '/v1/jobs',
      JSON.stringify({
        video: dataUri('clip-2s-faststart.mp4', 'video/mp4'),
        images: [s.fixture('person-b.jpg'), dataUri('person-c.webp', 'image/webp')],
      }),
      { 'content-type': 'application/json' },
    );
    expect(res.status).toBe(202);
    expect(res.body.input.images[0]).toBe(s.fixture('person-b.jpg'));
    expect(res.body.input.images[1]).toMatch(/\/files\//);
    expect((await s.waitTerminal(res.body.id)).cost?.seconds).toBe(2);
  });

  it('refuses a wrong type, an oversize file and a bad data: URI, naming the field, leaving nothing', async () => {
    const dir = uploadDir();
    const s = await start({
      api: { UPLOAD_TMP_DIR: dir, UPLOAD_MAX_VIDEO_BYTES: '8192', DATA_URI_MAX_BYTES: '1024' },
    });
    const png = fixtureBytes('person-a.png');
    const wrongType = await post(
      s,
      '/v1/jobs',
      form({}, [
        { field: 'video', name: 'not.mp4', bytes: png, type: 'video/mp4' },
        { field: 'images[]', name: 'a.png', bytes: png },
      ]),
    );
    expect(wrongType.status).toBe(415);
    expect(wrongType.body).toMatchObject({
      error: { code: 'FILE_TYPE_UNSUPPORTED', issues: [{ path: 'video' }] },
    });
    const wrongImage = await post(
      s,
      '/v1/jobs',
      form({ video: s.fixture('clip-2s-faststart.mp4') }, [
        { field: 'images[]', name: 'a.png', bytes: png },
        { field: 'images[]', name: 'clip.png', bytes: fixtureBytes('clip-2s-faststart.mp4') },
      ]),
    );
    expect(wrongImage.body).toMatchObject({
      error: { code: 'FILE_TYPE_UNSUPPORTED', issues: [{ path: 'images[1]' }] },
    });
    const oversize = await post(
      s,
      '/v1/jobs',
      form({}, [
        { field: 'video', name: 'big.mp4', bytes: fixtureBytes('clip-5s-moov-at-end.mp4') },
        { field: 'images[]', name: 'a.png', bytes: png },
      ]),
    );
    expect(oversize.status).toBe(413);
    expect(oversize.body).toMatchObject({ error: { code: 'FILE_TOO_LARGE', issues: [{ path: 'video' }] } });
    const unreadable = await post(
      s,
      '/v1/jobs',
      form({}, [
        { field: 'video', name: 't.mp4', bytes: fixtureBytes('truncated.mp4') },
        { field: 'images[]', name: 'a.png', bytes: png },
      ]),
    );
    expect(unreadable.body).toMatchObject({
      error: { code: 'FILE_UNREADABLE', issues: [{ path: 'video' }] },
    });
    const bigDataUri = await post(
      s,
      '/v1/jobs',
      JSON.stringify({
        video: s.fixture('clip-2s-faststart.mp4'),
        images: [`data:image/png;base64,${Buffer.alloc(2048, png).toString('base64')}`],
      }),
      { 'content-type': 'application/json' },
    );
    expect(bigDataUri.body).toMatchObject({
      error: { code: 'FILE_TOO_LARGE', issues: [{ path: 'images[0]' }] },
    });
    // A bad field of the job itself: refused before any file is uploaded.
    const badJob = await post(
      s,
      '/v1/jobs',
      form({ resolution: '4k' }, [{ field: 'images[]', name: 'a.png', bytes: png }]),
    );
    expect(badJob.status).toBe(400);

    expect(await leftovers(s)).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
    expect(await postsOf(s, '/files')).toBe(0);
  });

  it('leaves nothing behind when the client disconnects in the middle of a file', async () => {
    const dir = uploadDir();
    const s = await start({ api: { UPLOAD_TMP_DIR: dir } });
    const video = fixtureBytes('clip-5s-moov-at-end.mp4');
    const boundary = 'recast-truncated-boundary';
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="job"\r\n\r\n{}\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n` +
        'Content-Type: video/mp4\r\n\r\n',
    );
    const url = new URL(s.apiUrl);
    const socket = connect(Number(url.port), url.hostname);
    await new Promise<void>((done) => socket.once('connect', () => done()));
    socket.write(
      `POST /v1/jobs HTTP/1.1\r\nHost: ${url.host}\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\n` +
        `Content-Length: ${head.length + video.length + 200}\r\n\r\n`,
    );
    socket.write(head);
    socket.write(video.subarray(0, 6000));
    // The API has started spooling the file: a temp file exists.
    await waitFor(() => readdirSync(dir).length > 0, { what: 'the upload to reach a temp file' });
    socket.destroy();
    await waitFor(() => readdirSync(dir).length === 0, { what: 'the temp file to be removed' });
    expect(await leftovers(s)).toEqual([]);
    expect(await postsOf(s, '/files')).toBe(0);
  });

  it('uploads one image shared by 100 jobs once', async () => {
    const s = await start({ noWorker: true });
    const image = fixtureBytes('person-a.png');
    const submitOne = (i: number) =>
      post(
        s,
        '/v1/jobs',
        form({ video: s.fixture('clip-2s-faststart.mp4'), duration_seconds: 2, seed: i }, [
          { field: 'images[]', name: 'same.png', bytes: image },
        ]),
      );
    const jobs: JobView[] = [];
    // Ten at a time, so concurrent uploads of the same bytes are part of the test.
    for (let round = 0; round < 10; round++) {
      const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => submitOne(round * 10 + i)));
      for (const a of answers) {
        expect(a.status).toBe(202);
        jobs.push(a.body);
      }
    }
    expect(new Set(jobs.map((j) => j.input.images[0])).size).toBe(1);
    expect(await postsOf(s, '/files')).toBe(1);
    expect(await postsOf(s, '/uploads/:id', 'PUT')).toBe(1);
    expect((await s.emulatorState()).files).toMatchObject({ records: 1, uploaded: 1, bytes: image.length });

    // POST /v1/files dedupes against the same index.
    const again = new FormData();
    again.set('file', new Blob([new Uint8Array(image)]), 'again.png');
    const file = await post(s, '/v1/files', again);
    expect(file).toMatchObject({ status: 200, body: { deduped: true, uri: jobs[0]!.input.images[0] } });
    const lookup = await fetch(`${s.apiUrl}/v1/files/${String(file.body.sha256)}`);
    expect(lookup.status).toBe(200);
    // The index is per tenant.
    const other = await fetch(`${s.apiUrl}/v1/files/${String(file.body.sha256)}`, {
      headers: { 'x-tenant': 'other' },
    });
    expect(other.status).toBe(404);
  });
});

describe('kept outputs (OUTPUT_STORE)', () => {
  async function keptJob(s: System, body: Record<string, unknown>) {
    const job = await s.submit(body);
    await s.waitTerminal(job.id);
    return waitFor(
      async () => {
        const view = await s.getJob(job.id);
        const status = view.output?.retention?.status;
        return status === 'stored' || status === 'failed' ? view : undefined;
      },
      { what: `job ${job.id} output kept` },
    );
  }

  it('serves the output with ranges; its probed duration matches the bill', async () => {
    const store = mkdtempSync(join(scratch, 'outputs-'));
    const s = await start({ api: { OUTPUT_STORE: store }, worker: { OUTPUT_STORE: `file://${store}` } });
    const source = fixtureBytes('clip-2s-faststart.mp4');
    const job = await keptJob(s, {
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
    });
    expect(job.output).toMatchObject({
      video_url: expect.stringMatching(/\/outputs\//),
      recast_url: `/v1/jobs/${job.id}/output`,
      retention: { status: 'stored', bytes: source.length, attempts: 1, error: null },
      duration_check: { probed_seconds: 2, billed_seconds: 2, mismatch: false },
    });

    const whole = await fetch(`${s.apiUrl}${job.output?.recast_url}`);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await whole.arrayBuffer()).equals(source)).toBe(true);

    const part = await fetch(`${s.apiUrl}${job.output?.recast_url}`, { headers: { range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${source.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(source.subarray(100, 200))).toBe(true);

    const tail = await fetch(`${s.apiUrl}${job.output?.recast_url}`, { headers: { range: 'bytes=-10' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(source.subarray(source.length - 10))).toBe(true);

    const outside = await fetch(`${s.apiUrl}${job.output?.recast_url}`, {
      headers: { range: `bytes=${source.length}-` },
    });
    expect(outside.status).toBe(416);
    expect(outside.headers.get('content-range')).toBe(`bytes */${source.length}`);
    await outside.body?.cancel();

    const otherTenant = await fetch(`${s.apiUrl}${job.output?.recast_url}`, {
      headers: { 'x-tenant': 'other' },
    });
    expect(otherTenant.status).toBe(404);
    await otherTenant.body?.cancel();
    expect((await s.costs(['resolution'])).total.billing_mismatches).toBe(0);
  });

  it('flags a job billed for more seconds than its output lasts, and counts it in the costs report', async () => {
    const store = mkdtempSync(join(scratch, 'outputs-'));
    const s = await start({
      emulator: { faults: { billingSkew: 1.5 } },
      api: { OUTPUT_STORE: store },
      worker: { OUTPUT_STORE: store },
    });
    const job = await keptJob(s, {
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
    });
    expect(job.cost?.seconds).toBe(3);
    expect(job.output?.duration_check).toMatchObject({
      probed_seconds: 2,
      billed_seconds: 3,
      mismatch: true,
    });
    // The job is still completed and charged what the provider billed: the check only flags it.
    expect(job).toMatchObject({ state: 'completed', cost: { micro_usd: 90_000 } });
    const report = (await (await fetch(`${s.apiUrl}/v1/costs?group_by=tenant`)).json()) as {
      rows: { tenant: string; billing_mismatches: number }[];
      total: { billing_mismatches: number; micro_usd: number };
    };
    expect(report.total).toMatchObject({ billing_mismatches: 1, micro_usd: 90_000 });
    expect(report.rows).toEqual([expect.objectContaining({ tenant: 'default', billing_mismatches: 1 })]);
  });

  it('gives up at once on an output over OUTPUT_MAX_BYTES: another try would fetch the same bytes', async () => {
    const store = mkdtempSync(join(scratch, 'outputs-'));
    const s = await start({
      api: { OUTPUT_STORE: store },
      worker: { OUTPUT_STORE: store, OUTPUT_MAX_BYTES: '4096' },
    });
    const job = await keptJob(s, {
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
    });
    expect(job.output?.retention).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: expect.stringMatching(/4096-byte limit/),
    });
    expect(readdirSync(store)).toEqual([]);
  });

  it('reports a failed download on the job and never loses it', async () => {
    const store = mkdtempSync(join(scratch, 'outputs-'));
    // The worker may not fetch from the emulator (no allow-listed host): every try is refused.
    const s = await start({
      api: { OUTPUT_STORE: store },
      worker: { OUTPUT_STORE: store, OUTPUT_DOWNLOAD_ATTEMPTS: '2', SSRF_ALLOW_HOSTS: '' },
    });
    const job = await keptJob(s, {
      video: s.fixture('clip-2s-faststart.mp4'),
      images: [s.fixture('person-a.png')],
      duration_seconds: 2,
    });
    expect(job).toMatchObject({
      state: 'completed',
      cost: { seconds: 2 },
      output: { recast_url: null, retention: { status: 'failed', attempts: 2, error: expect.any(String) } },
    });
    const res = await fetch(`${s.apiUrl}/v1/jobs/${job.id}/output`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('OUTPUT_NOT_RETAINED');
  });
});
