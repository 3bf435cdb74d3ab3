import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { API_KEY, dataOf, type RunningEmulator, startEmulator, type TaskJson } from './test-support.js';

let emu: RunningEmulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

async function start(options: Parameters<typeof startEmulator>[0] = {}) {
  emu = await startEmulator(options);
  return emu;
}

interface ListPage {
  items: TaskJson[];
  next_cursor: string;
  prev_cursor: string;
  has_next: boolean;
  has_previous: boolean;
  items_per_page: number;
  total_items: number;
}

describe('cancel', () => {
  it('moves a live task through cancelling to cancelled, billing nothing', async () => {
    // Long steps: the cancel must land while the task is still received, even on a busy machine.
    const e = await start({ stepMs: 300 });
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'));
    const cancel = await e.call('POST', `/tasks/${id}/cancel`);
    expect(cancel.status).toBe(200);
    expect(dataOf<TaskJson>(cancel.body)).toMatchObject({ id, status: 8, status_text: 'cancelling' });
    const task = await e.waitTerminal(id);
    expect(task).toMatchObject({ status: 12, status_text: 'cancelled', output: null });
    expect(task.events.map((event) => event.status)).toEqual([1, 8, 12]);
    expect(e.app.emulator.state()).toMatchObject({ bill: { total_micro_usd: 0 }, in_flight: { current: 0 } });
  });

  it('is a successful no-op on a terminal task, and 404 for an unknown one', async () => {
    const e = await start();
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'));
    await e.waitTerminal(id);
    const again = await e.call('POST', `/tasks/${id}/cancel`);
    expect(again.status).toBe(200);
    expect(dataOf<TaskJson>(again.body).status_text).toBe('completed');
    expect((await e.call('POST', '/tasks/nope/cancel')).status).toBe(404);
  });

  it('accepts the SDK form: Content-Type json with an empty body', async () => {
    const e = await start();
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'));
    const response = await fetch(`${e.url}/tasks/${id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    });
    expect(response.status).toBe(200);
  });
});

describe('list', () => {
  it('pages newest first with cursors, and includes the webhook', async () => {
    const e = await start({ stepMs: 10_000 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(
        await e.submit(e.fixture('clip-2s-faststart.mp4'), { webhook: `http://127.0.0.1:9/hooks/job-${i}` }),
      );
    }
    const newest = [...ids].reverse();

    const first = dataOf<ListPage>((await e.call('POST', '/tasks/list', { limit: 2 })).body);
    expect(first.items.map((task) => task.id)).toEqual(newest.slice(0, 2));
    expect(first).toMatchObject({
      has_next: true,
      has_previous: false,
      prev_cursor: '',
      items_per_page: 2,
      total_items: 5,
    });
    expect(first.items[0]?.webhook).toBe('http://127.0.0.1:9/hooks/job-4');

    const second = dataOf<ListPage>(
      (await e.call('POST', '/tasks/list', { cursor: first.next_cursor, limit: 2, direction: 'next' })).body,
    );
    expect(second.items.map((task) => task.id)).toEqual(newest.slice(2, 4));
    expect(second).toMatchObject({ has_next: true, has_previous: true });

    const third = dataOf<ListPage>(
      (await e.call('POST', '/tasks/list', { cursor: second.next_cursor, limit: 2 })).body,
    );
    expect(third.items.map((task) => task.id)).toEqual(newest.slice(4));
    expect(third).toMatchObject({ has_next: false, next_cursor: '' });

    const back = dataOf<ListPage>(
      (await e.call('POST', '/tasks/list', { cursor: second.prev_cursor, limit: 2, direction: 'prev' })).body,
    );
    expect(back.items.map((task) => task.id)).toEqual(newest.slice(0, 2));
  });

  it('filters by webhook and by status, and rejects a bad cursor', async () => {
    const e = await start({ stepMs: 10_000 });
    await e.submit(e.fixture('clip-2s-faststart.mp4'), { webhook: 'http://127.0.0.1:9/hooks/a' });
    const b = await e.submit(e.fixture('clip-2s-faststart.mp4'), { webhook: 'http://127.0.0.1:9/hooks/b' });
    const byHook = dataOf<ListPage>(
      (
        await e.call('POST', '/tasks/list', {
          filters: [{ field: 'webhook', operator: 'eq', value: 'http://127.0.0.1:9/hooks/b' }],
        })
      ).body,
    );
    expect(byHook.items.map((task) => task.id)).toEqual([b]);
    const byStatus = dataOf<ListPage>(
      (
        await e.call('POST', '/tasks/list', {
          filters: [{ field: 'status', operator: 'eq', value: 'received' }],
        })
      ).body,
    );
    expect(byStatus.total_items).toBe(2);
    expect((await e.call('POST', '/tasks/list', { cursor: 'garbage' })).status).toBe(400);
  });

  it('lists with an empty body using defaults', async () => {
    const e = await start();
    const page = dataOf<ListPage>((await e.call('POST', '/tasks/list')).body);
    expect(page).toEqual({
      items: [],
      next_cursor: '',
      prev_cursor: '',
      has_next: false,
      has_previous: false,
      items_per_page: 20,
      total_items: 0,
    });
  });
});

describe('files', () => {
  it('creates a record with a presigned upload URL, takes the bytes, and serves them at the uri', async () => {
    const e = await start();
    const bytes = Buffer.from(await (await fetch(e.fixture('clip-5s-moov-at-end.mp4'))).arrayBuffer());
    const created = await e.call('POST', '/files', {
      files: [{ uri: '', filename: 'source clip.mp4', content_type: 'video/mp4', size: bytes.length }],
    });
    expect(created.status).toBe(200);
    const [record] = dataOf<Array<{ uri: string; upload_url: string; id: string; filename: string }>>(
      created.body,
    );
    expect(record?.upload_url).toMatch(/[?&]signature=/);

    const before = await fetch(record?.uri ?? '');
    expect(before.status).toBe(404);
    await before.body?.cancel();

    const flipped = (record?.upload_url ?? '').replace(
      /signature=(.)/,
      (_m, c: string) => `signature=${c === '0' ? '1' : '0'}`,
    );
    const tampered = await fetch(flipped, {
      method: 'PUT',
      body: bytes,
    });
    expect(tampered.status).toBe(403);

    const put = await fetch(record?.upload_url ?? '', {
      method: 'PUT',
      headers: { 'content-type': 'video/mp4' },
      body: bytes,
    });
    expect(put.status).toBe(200);

    const served = await fetch(record?.uri ?? '');
    expect(served.headers.get('content-type')).toBe('video/mp4');
    expect(Buffer.from(await served.arrayBuffer()).equals(bytes)).toBe(true);

    // An uploaded file works as the task's source video.
    const task = await e.waitTerminal(await e.submit(record?.uri ?? ''));
    expect(task.output?.output_meta.outputs[0]?.seconds).toBe(5);
  });

  it('reads an uploaded source from its own storage and bills its real duration (skewed when asked)', async () => {
    const e = await start({ faults: { billingSkew: 1.5 } });
    const bytes = Buffer.from(await (await fetch(e.fixture('clip-2s-faststart.mp4'))).arrayBuffer());
    const created = await e.call('POST', '/files', {
      files: [{ uri: '', filename: 'a.mp4', content_type: 'video/mp4', size: bytes.length }],
    });
    const [record] = dataOf<Array<{ uri: string; upload_url: string }>>(created.body);
    await fetch(record?.upload_url ?? '', { method: 'PUT', body: bytes });
    const task = await e.waitTerminal(await e.submit(record?.uri ?? ''));
    expect(task.status_text).toBe('completed');
    // 2 s of video, reported and billed as 3 s: the bill follows the report.
    expect(task.output?.output_meta.outputs[0]?.seconds).toBe(3);
    const state = e.app.emulator.state();
    expect(state.bill.tasks[0]?.seconds).toBe(3);
    expect(state.files).toEqual({ records: 1, uploaded: 1, bytes: bytes.length });
    expect(state.requests.filter((r) => r.route === '/files/:id/:name')).toEqual([]);
  });

  it('fails a task whose source is a file record that never got its bytes', async () => {
    const e = await start();
    const created = await e.call('POST', '/files', {
      files: [{ uri: '', filename: 'a.mp4', content_type: 'video/mp4' }],
    });
    const [record] = dataOf<Array<{ uri: string }>>(created.body);
    const task = await e.waitTerminal(await e.submit(record?.uri ?? ''));
    expect(task.status_text).toBe('failed');
    expect(String(task.error)).toMatch(/never uploaded/);
    // The same for a reference image.
    const withImage = await e.waitTerminal(
      await e.submit(e.fixture('clip-2s-faststart.mp4'), { input: { images: [record?.uri] } }),
    );
    expect(withImage.status_text).toBe('failed');
    expect(String(withImage.error)).toMatch(/reference images: file not found/);
  });

  it('stores JSON bytes raw rather than parsing them', async () => {
    const e = await start();
    const created = await e.call('POST', '/files', {
      files: [{ filename: 'a.json', content_type: 'application/json' }],
    });
    const [record] = dataOf<Array<{ uri: string; upload_url: string }>>(created.body);
    const body = '{"not": "parsed"}';
    await fetch(record?.upload_url ?? '', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(await (await fetch(record?.uri ?? '')).text()).toBe(body);
  });

  it('rejects a malformed files request naming the field', async () => {
    const e = await start();
    const response = await e.call('POST', '/files', { files: [{ filename: 3 }] });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ detail: expect.stringMatching(/^files\[0\]\.filename: /) });
  });
});

describe('stream', () => {
  async function readLines(response: Response): Promise<Array<Record<string, unknown>>> {
    const text = await response.text();
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line));
  }

  it('sends the full task, {data, fields} updates, heartbeats, and closes after the terminal state', async () => {
    const e = await start({ stepMs: 40, heartbeatMs: 15 });
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'));
    const response = await fetch(`${e.url}/tasks/${id}/stream`, {
      headers: { authorization: `Bearer ${API_KEY}`, accept: 'application/x-ndjson' },
    });
    expect(response.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = await readLines(response);

    expect(lines[0]).toMatchObject({
      id,
      status: expect.any(Number),
      input: expect.any(Object),
      logs: expect.any(Array),
    });
    expect(lines.some((line) => line.type === 'heartbeat')).toBe(true);
    const updates = lines.slice(1).filter((line) => line.type !== 'heartbeat') as Array<{
      data: Record<string, unknown>;
      fields: string[];
    }>;
    for (const update of updates) {
      expect(update.data.id).toBe(id);
      expect(update.fields).toEqual(expect.arrayContaining(['status', 'updated_at']));
      for (const field of update.fields) expect(update.data).toHaveProperty(field);
    }
    const last = updates.at(-1);
    expect(last?.data).toMatchObject({ status: 10, status_text: 'completed', output: expect.any(Object) });
    expect(last?.fields).toEqual(expect.arrayContaining(['output']));
    // Every status after the one the first line showed, in order, none skipped.
    const walk = [1, 2, 3, 4, 7, 9, 10];
    const after = walk.slice(walk.indexOf(Number(lines[0]?.status)) + 1);
    expect(updates.map((update) => update.data.status)).toEqual(after);
  });

  it('sends one line and closes for a task that is already terminal', async () => {
    const e = await start();
    const id = await e.submit(e.fixture('not-a-video.mp4'));
    await e.waitTerminal(id);
    const response = await fetch(`${e.url}/tasks/${id}/stream`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    const lines = await readLines(response);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ id, status: 11, error: expect.any(String) });
  });

  it('lets go of a stream whose client disconnects, and close() ends open streams', async () => {
    const e = await start({ stepMs: 10_000, heartbeatMs: 10 });
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'));
    const aborter = new AbortController();
    const response = await fetch(`${e.url}/tasks/${id}/stream`, {
      headers: { authorization: `Bearer ${API_KEY}` },
      signal: aborter.signal,
    });
    const reader = response.body?.getReader();
    await reader?.read();
    aborter.abort();
    await sleep(30);
    const open = await fetch(`${e.url}/tasks/${id}/stream`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    const pending = open.text();
    await e.close();
    emu = undefined;
    expect((await pending).split('\n')[0]).toContain(id);
  });
});
