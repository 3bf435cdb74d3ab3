import { afterEach, describe, expect, it } from 'vitest';
import { type CannedHandler, type CannedServer, startCannedServer } from '../testing/canned-server.js';
import { createInferenceClient, type InferenceClient } from './inference-client.js';
import { TaskTrails } from './task-trail.js';

const task = (status: number, status_text: string) => ({
  id: 'task_1',
  status,
  status_text,
  output: null,
  created_at: '2026-02-01T10:00:00Z',
  updated_at: '2026-02-01T10:00:01Z',
  logs: [{ id: 'l1', created_at: '2026-02-01T10:00:02Z', log_type: 1, content: 'Reference images: 2' }],
  events: [{ id: 'e1', event_time: '2026-02-01T10:00:02Z', status, status_text }],
});

let server: CannedServer | undefined;
let client: InferenceClient | undefined;

async function setup(handler: CannedHandler) {
  server = await startCannedServer(handler);
  client = createInferenceClient({ baseUrl: server.url, apiKey: 'inf_key' });
  return { server, client };
}

afterEach(async () => {
  await client?.close();
  await server?.close();
});

describe('TaskTrails', () => {
  it("reads a task's events and logs once for concurrent callers, and again only after a live task's time", async () => {
    let status = [7, 'running'] as const;
    const { server, client } = await setup(() => ({ body: task(...status) }));
    const trails = new TaskTrails(client, { liveTtlMs: 50 });
    const [a, b] = await Promise.all([trails.read('task_1'), trails.read('task_1')]);
    expect(a).toEqual(b);
    expect(a).toMatchObject({
      task_id: 'task_1',
      status: 'running',
      events: [{ status: 'running', at: '2026-02-01T10:00:02Z' }],
      logs: [{ at: '2026-02-01T10:00:02Z', type: 'run', content: 'Reference images: 2' }],
      error: null,
    });
    expect(server.requests).toHaveLength(1);
    await trails.read('task_1');
    expect(server.requests).toHaveLength(1);
    status = [10, 'completed'] as unknown as typeof status;
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect((await trails.read('task_1')).status).toBe('completed');
    expect(server.requests).toHaveLength(2);
    // A finished task does not change: it is not read again while it is cached.
    await new Promise((resolve) => setTimeout(resolve, 80));
    await trails.read('task_1');
    expect(server.requests).toHaveLength(2);
  });

  it('says why a task could not be read, and asks again after a short while', async () => {
    let fail = true;
    const { server, client } = await setup(() =>
      fail ? { status: 503, body: { detail: 'down for maintenance' } } : { body: task(10, 'completed') },
    );
    const trails = new TaskTrails(client, { errorTtlMs: 50 });
    const first = await trails.read('task_1');
    expect(first).toMatchObject({ status: null, events: [], logs: [] });
    expect(first.error).toMatch(/^PROVIDER_UNAVAILABLE: /);
    fail = false;
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await trails.read('task_1')).toMatchObject({ status: 'completed', error: null });
    expect(server.requests).toHaveLength(2);
  });
});
