import { inference } from '@inferencesh/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { API_KEY, type RunningEmulator, startEmulator } from './test-support.js';

// The SDK's .d.ts files use extensionless relative imports, which NodeNext cannot follow: its
// `export * from './types'` is invisible to tsc here, so the few types the test needs are restated.
const TaskStatusCompleted = 10;
const TaskStatusCancelled = 12;
interface SdkUpdate {
  status: unknown;
}
interface SdkLog {
  content: string;
}
interface SdkTask {
  id: string;
}

/**
 * The official SDK is the reference client: if it cannot drive the emulator, the emulator is not
 * faithful, whatever our own tests say.
 */
let emu: RunningEmulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

async function setup(options: Parameters<typeof startEmulator>[0] = {}) {
  emu = await startEmulator(options);
  const client = inference({ apiKey: API_KEY, baseUrl: emu.url });
  const params = (video: string) => ({ app: 'pruna/p-video-replace', input: emu?.runInput(video) ?? {} });
  return { e: emu, client, params };
}

describe('@inferencesh/sdk against the emulator', () => {
  it('runs and waits over the NDJSON stream (the default) to completed', async () => {
    const { e, client, params } = await setup({ heartbeatMs: 15 });
    const statuses: number[] = [];
    const result = await client.run(params(e.fixture('clip-5s-moov-at-end.mp4')), {
      onPartialUpdate: (update: SdkUpdate) => statuses.push(Number(update.status)),
    });
    expect(result.status).toBe(TaskStatusCompleted);
    expect(result.output).toMatchObject({ output_meta: { outputs: [{ seconds: 5, resolution: '720p' }] } });
    expect(result.logs?.map((log: SdkLog) => log.content)).toContain('Prediction completed successfully');
    expect(statuses.at(-1)).toBe(TaskStatusCompleted);
    expect(e.app.emulator.state().bill.total_micro_usd).toBe(150_000);
  });

  it('runs and waits by polling /tasks/{id}/status', async () => {
    const { e, client, params } = await setup();
    const seen: number[] = [];
    const result = await client.run(params(e.fixture('clip-2s-faststart.mp4')), {
      stream: false,
      pollIntervalMs: 15,
      onUpdate: (update: SdkUpdate) => seen.push(Number(update.status)),
    });
    expect(result.status).toBe(TaskStatusCompleted);
    expect(seen.at(-1)).toBe(TaskStatusCompleted);
    const routes = new Set(e.app.emulator.state().requests.map((request) => request.route));
    expect(routes).toContain('/tasks/:id/status');
    expect(routes).not.toContain('/tasks/:id/stream');
  });

  it('rejects a run whose task fails, with the task error', async () => {
    const { e, client, params } = await setup();
    await expect(client.run(params(e.fixture('truncated.mp4')))).rejects.toThrow(
      /Failed to load input video/,
    );
  });

  it('cancels a task started without waiting', async () => {
    const { e, client, params } = await setup({ stepMs: 50 });
    const task = await client.run(params(e.fixture('clip-2s-faststart.mp4')), { wait: false });
    expect(task.id).toEqual(expect.any(String));
    await client.cancel(task.id);
    const watched = client.tasks.watch(task, { stream: false, pollIntervalMs: 15 });
    await expect(watched.done).rejects.toThrow('task cancelled');
    const final = await client.getTask(task.id);
    expect(final.data.status).toBe(TaskStatusCancelled);
    expect(e.app.emulator.state().bill.total_micro_usd).toBe(0);
  });

  it('uploads a file through POST /files and the presigned PUT, and runs on its uri', async () => {
    const { e, client } = await setup();
    const bytes = await (await fetch(e.fixture('clip-3s.mov'))).arrayBuffer();
    const file = await client.files.upload(new Blob([bytes], { type: 'video/quicktime' }), {
      filename: 'clip.mov',
    });
    expect(file.uri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/files\//);
    const result = await client.run({ app: 'pruna/p-video-replace', input: e.runInput(file.uri) });
    expect(result.output).toMatchObject({ output_meta: { outputs: [{ seconds: 3 }] } });
  });

  it.each(['v1', 'v2'] as const)('understands the %s envelope', async (envelope) => {
    const { e, client, params } = await setup({ faults: { envelope } });
    const result = await client.run(params(e.fixture('clip-2s-faststart.mp4')), {
      stream: false,
      pollIntervalMs: 15,
    });
    expect(result.status).toBe(TaskStatusCompleted);
  });

  it('lists tasks through the SDK cursor request', async () => {
    const { e, client, params } = await setup({ stepMs: 10_000 });
    const a = await client.run(params(e.fixture('clip-2s-faststart.mp4')), { wait: false });
    const b = await client.run(params(e.fixture('clip-2s-faststart.mp4')), { wait: false });
    const page = await client.tasks.list({
      cursor: '',
      limit: 10,
      direction: 'next',
      filters: [],
      preloads: [],
      sort: [],
      fields: [],
      permissions: [],
      include_others: false,
    });
    expect(page.data.items.map((task: SdkTask) => task.id)).toEqual([b.id, a.id]);
  });
});
