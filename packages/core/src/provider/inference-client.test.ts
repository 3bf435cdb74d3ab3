import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../infra/logger.js';
import { type CannedHandler, type CannedServer, startCannedServer } from '../testing/canned-server.js';
import {
  createInferenceClient,
  type InferenceClient,
  type InferenceClientOptions,
} from './inference-client.js';
import type { RateLimitInfo } from './rate-limit.js';

const API_KEY = 'inf_test_secret_key_123';

const slimTask = {
  id: 'task_1',
  short_id: 't1',
  status: 2,
  status_text: 'queued',
  output: null,
  created_at: '2026-02-01T10:00:00Z',
  updated_at: '2026-02-01T10:00:01Z',
};

const fullTask = {
  ...slimTask,
  status: 10,
  status_text: 'completed',
  input: { video: 'https://example.com/a.mp4', images: ['https://example.com/1.png'] },
  output: { video: { uri: 'https://cdn.example.com/out.mp4' }, output_meta: { outputs: [{ seconds: 5 }] } },
  logs: [
    {
      id: 'l1',
      created_at: '2026-02-01T10:00:02Z',
      task_id: 'task_1',
      log_type: 1,
      content: 'Video replaced',
    },
  ],
  events: [{ id: 'e1', created_at: '2026-02-01T10:00:02Z', event_time: '2026-02-01T10:00:02Z', status: 7 }],
  usage_events: null,
  webhook: 'https://recast.example/hooks/abc',
  app_id: 'app_1',
  app_version_id: 'ver_1',
  some_new_field: { nested: true },
};

let server: CannedServer | undefined;
let client: InferenceClient | undefined;

async function setup(handler: CannedHandler, options: Partial<InferenceClientOptions> = {}) {
  server = await startCannedServer(handler);
  client = createInferenceClient({ baseUrl: server.url, apiKey: API_KEY, ...options });
  return { server, client };
}

afterEach(async () => {
  await client?.close();
  await server?.close();
  client = undefined;
  server = undefined;
});

describe('InferenceClient requests', () => {
  it('run posts {app, input, webhook, metadata} with a bearer token and unwraps a v3 envelope', async () => {
    const { server, client } = await setup(() => ({ body: { data: slimTask, messages: [] } }));
    const task = await client.run({
      input: { video: 'https://example.com/a.mp4', images: ['https://example.com/1.png'] },
      webhook: 'https://recast.example/hooks/abc',
      metadata: { job: 'j1' },
    });
    const request = server.requests[0]!;
    expect(request.method).toBe('POST');
    expect(request.url).toBe('/apps/run');
    expect(request.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.json).toEqual({
      app: 'pruna/p-video-replace',
      input: { video: 'https://example.com/a.mp4', images: ['https://example.com/1.png'] },
      webhook: 'https://recast.example/hooks/abc',
      metadata: { job: 'j1' },
    });
    expect(task).toMatchObject({
      id: 'task_1',
      shortId: 't1',
      status: 'queued',
      rawStatus: 2,
      statusText: 'queued',
    });
    expect(task.raw).toEqual(slimTask);
  });

  it('honours a path prefix in baseUrl and a pinned app version, and omits absent optional fields', async () => {
    const { server } = await setup(() => ({ body: slimTask }));
    await client?.close();
    client = createInferenceClient({
      baseUrl: `${server.url}/v1/`,
      apiKey: API_KEY,
      app: 'pruna/p-video-replace@11n0716p',
      userAgent: 'recast-test',
    });
    await client.run({ input: { video: 'v' } });
    const request = server.requests[0]!;
    expect(request.url).toBe('/v1/apps/run');
    expect(request.headers['user-agent']).toBe('recast-test');
    expect(request.json).toEqual({ app: 'pruna/p-video-replace@11n0716p', input: { video: 'v' } });
  });

  it('accepts a v1 envelope and a bare v2 object', async () => {
    const { server, client } = await setup(() => ({ body: { success: true, status: 200, data: slimTask } }));
    expect((await client.run({ input: {} })).id).toBe('task_1');
    server.respond(() => ({ body: slimTask }));
    expect((await client.run({ input: {} })).id).toBe('task_1');
  });

  it('turns a v1 envelope with success:false into a typed error', async () => {
    const { client } = await setup(() => ({
      body: { success: false, status: 404, error: { code: 'not_found', message: 'no such task' } },
    }));
    await expect(client.getTask('nope')).rejects.toMatchObject({
      code: 'PROVIDER_NOT_FOUND',
      retryable: false,
      detail: 'no such task',
      problemType: 'not_found',
    });
  });

  it('getTask reads the full task, keeping unknown fields in raw', async () => {
    const { server, client } = await setup(() => ({ body: { data: fullTask, messages: [] } }));
    const task = await client.getTask('task_1');
    expect(server.requests[0]).toMatchObject({ method: 'GET', url: '/tasks/task_1' });
    expect(task).toMatchObject({
      id: 'task_1',
      status: 'completed',
      rawStatus: 10,
      webhook: 'https://recast.example/hooks/abc',
      appId: 'app_1',
      appVersionId: 'ver_1',
      usageEvents: [],
      logs: [{ id: 'l1', logType: 1, content: 'Video replaced' }],
      events: [{ id: 'e1', status: 'running', rawStatus: 7 }],
    });
    expect(task.raw.some_new_field).toEqual({ nested: true });
  });

  it('getStatus reads the light poll and escapes the id', async () => {
    const { server, client } = await setup(() => ({
      body: { data: { id: 'a/b', status: 9, updated_at: '2026-02-01T10:00:05Z' } },
    }));
    const status = await client.getStatus('a/b');
    expect(server.requests[0]!.url).toBe('/tasks/a%2Fb/status');
    expect(status).toEqual({
      id: 'a/b',
      status: 'uploading',
      rawStatus: 9,
      statusText: undefined,
      updatedAt: '2026-02-01T10:00:05Z',
    });
  });

  it('interprets bare numbers with the legacy numbering when configured', async () => {
    const { client } = await setup(() => ({ body: { data: { id: 't', status: 9 } } }), {
      statusNumbering: 'legacy',
    });
    expect((await client.getStatus('t')).status).toBe('completed');
  });

  it('cancel ignores the answer body, whether 204 or JSON or text', async () => {
    const { server, client } = await setup(() => ({ status: 204 }));
    await expect(client.cancel('task_1')).resolves.toBeUndefined();
    expect(server.requests[0]).toMatchObject({ method: 'POST', url: '/tasks/task_1/cancel' });
    server.respond(() => ({ body: 'ok' }));
    await expect(client.cancel('task_1')).resolves.toBeUndefined();
    server.respond(() => ({ body: { data: { whatever: 1 } } }));
    await expect(client.cancel('task_1')).resolves.toBeUndefined();
    server.respond(() => ({ status: 404, body: { type: 'https://api.inference.sh/errors/not_found' } }));
    await expect(client.cancel('task_1')).rejects.toMatchObject({ code: 'PROVIDER_NOT_FOUND' });
  });

  it('list posts the SDK cursor request and maps the cursor answer', async () => {
    const { server, client } = await setup(() => ({
      body: {
        data: {
          items: [fullTask],
          next_cursor: 'c2',
          prev_cursor: '',
          has_next: true,
          has_previous: false,
          items_per_page: 1,
          total_items: 2,
        },
        messages: [],
      },
    }));
    const page = await client.list({ limit: 1 });
    expect(server.requests[0]).toMatchObject({ method: 'POST', url: '/tasks/list' });
    expect(server.requests[0]!.json).toMatchObject({ cursor: '', limit: 1, filters: [], sort: [] });
    expect(page.items.map((task) => task.id)).toEqual(['task_1']);
    expect(page).toMatchObject({ nextCursor: 'c2', hasNext: true });

    server.respond(() => ({ body: { data: { items: null, next_cursor: '', has_next: false } } }));
    const last = await client.list({ cursor: 'c2', limit: 1 });
    expect(server.requests[1]!.json).toMatchObject({ cursor: 'c2', limit: 1 });
    expect(last).toEqual({ items: [], nextCursor: undefined, hasNext: false });
  });

  it('refuses an empty task id before any request', async () => {
    const { server, client } = await setup(() => ({ body: slimTask }));
    await expect(client.getTask('  ')).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(server.requests).toHaveLength(0);
  });
});

describe('InferenceClient answers it cannot use', () => {
  const cases: Array<[string, CannedHandler]> = [
    ['non-JSON 200', () => ({ body: '<html>hello</html>' })],
    ['empty 200', () => ({ status: 200 })],
    ['task without id', () => ({ body: { data: { status: 2 } } })],
    ['array instead of task', () => ({ body: [slimTask] })],
    ['3xx redirect', () => ({ status: 302, headers: { location: 'https://elsewhere' } })],
  ];
  it.each(cases)('%s → retryable PROVIDER_BAD_RESPONSE', async (_name, handler) => {
    const { client } = await setup(handler);
    await expect(client.run({ input: {} })).rejects.toMatchObject({
      name: 'InferenceError',
      code: 'PROVIDER_BAD_RESPONSE',
      retryable: true,
    });
  });
});

describe('InferenceClient rate-limit headers and secrets', () => {
  it('surfaces X-RateLimit-* of successful answers', async () => {
    const seen: RateLimitInfo[] = [];
    const reset = Math.floor(Date.now() / 1000) + 60;
    const { client } = await setup(
      () => ({
        body: slimTask,
        headers: {
          'x-ratelimit-remaining': '42',
          'x-ratelimit-reset': String(reset),
          'x-ratelimit-limit': '100',
        },
      }),
      { onRateLimitInfo: (info) => seen.push(info) },
    );
    expect(client.lastRateLimit).toBeUndefined();
    await client.run({ input: {} });
    expect(seen).toHaveLength(1);
    expect(client.lastRateLimit).toMatchObject({
      remaining: 42,
      limit: 100,
      resetAtMs: reset * 1000,
      httpStatus: 200,
    });
  });

  it('never writes the API key to the log, nor into an error', async () => {
    const destination = new PassThrough();
    const lines: string[] = [];
    destination.on('data', (chunk: Buffer) => lines.push(chunk.toString('utf8')));
    const logger = createLogger({ level: 'debug', destination });
    const { client } = await setup(() => ({ status: 401, body: { title: 'Unauthorized' } }), { logger });
    const error: unknown = await client.run({ input: {} }).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'PROVIDER_UNAUTHORIZED', retryable: false });
    expect(JSON.stringify(error)).not.toContain(API_KEY);
    expect(String(error)).not.toContain(API_KEY);
    expect(lines.join('')).toContain('inference call');
    expect(lines.join('')).not.toContain(API_KEY);
  });

  it('rejects bad options without echoing the key', () => {
    expect(() => createInferenceClient({ baseUrl: 'not a url', apiKey: API_KEY })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.not.stringContaining(API_KEY) }),
    );
    expect(() => createInferenceClient({ baseUrl: 'ftp://x', apiKey: API_KEY })).toThrow(/baseUrl/);
  });
});

describe('InferenceClient config', () => {
  it('keeps the API key out of its public config and serialization', async () => {
    const { client } = await setup(() => ({ body: slimTask }));
    expect(client.config).toMatchObject({
      app: 'pruna/p-video-replace',
      connections: 16,
      statusNumbering: 'current',
    });
    expect(JSON.stringify(client.config)).not.toContain(API_KEY);
    expect(JSON.stringify(client)).not.toContain(API_KEY);
  });
});
