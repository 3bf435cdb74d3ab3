import { afterEach, describe, expect, it } from 'vitest';
import { buildEmulator, type Emulator } from './app.js';
import { API_KEY } from './test-support.js';

const auth = { authorization: `Bearer ${API_KEY}` };
const goodInput = {
  video: 'http://127.0.0.1:9/fixtures/clip-2s-faststart.mp4',
  images: ['http://127.0.0.1:9/fixtures/person-a.png'],
};

let app: Emulator | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function emulator(options: Parameters<typeof buildEmulator>[0] = {}) {
  // A long step keeps submitted tasks still: these tests only look at the HTTP surface.
  app = await buildEmulator({ apiKey: API_KEY, stepMs: 60_000, ...options });
  return app;
}

function run(target: Emulator, body: unknown, headers: Record<string, string> = auth) {
  return target.inject({ method: 'POST', url: '/apps/run', headers, payload: body as object });
}

describe('auth', () => {
  it.each([
    ['no header', {}],
    ['a wrong key', { authorization: 'Bearer inf_wrong' }],
    ['a non-bearer scheme', { authorization: `Basic ${API_KEY}` }],
  ])('answers 401 problem+json with %s', async (_name, headers) => {
    const target = await emulator();
    const response = await run(target, { app: 'pruna/p-video-replace', input: goodInput }, headers);
    expect(response.statusCode).toBe(401);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({
      type: expect.stringMatching(/\/errors\/unauthorized$/),
      title: expect.any(String),
      status: 401,
      detail: expect.any(String),
    });
    expect(target.emulator.state().submits).toBe(0);
  });

  it('guards every provider endpoint but not fixtures or admin', async () => {
    const target = await emulator();
    for (const [method, url] of [
      ['GET', '/tasks/x'],
      ['GET', '/tasks/x/status'],
      ['GET', '/tasks/x/stream'],
      ['POST', '/tasks/x/cancel'],
      ['POST', '/tasks/list'],
      ['POST', '/files'],
    ] as const) {
      expect((await target.inject({ method, url })).statusCode, `${method} ${url}`).toBe(401);
    }
    expect((await target.inject({ method: 'GET', url: '/fixtures/person-a.png' })).statusCode).toBe(200);
    expect((await target.inject({ method: 'GET', url: '/_emulator/state' })).statusCode).toBe(200);
  });
});

describe('POST /apps/run validation', () => {
  it.each([
    ['missing video', { images: goodInput.images }, 'input.video'],
    ['video not a URL', { ...goodInput, video: 'clip.mp4' }, 'input.video'],
    ['no images', { ...goodInput, images: [] }, 'input.images'],
    ['five images', { ...goodInput, images: Array(5).fill(goodInput.images[0]) }, 'input.images'],
    ['an image that is not a URL', { ...goodInput, images: [goodInput.images[0], 42] }, 'input.images[1]'],
    ['resolution 4k', { ...goodInput, resolution: '4k' }, 'input.resolution'],
    ['turbo as a string', { ...goodInput, turbo: 'yes' }, 'input.turbo'],
    ['target_fps as a number', { ...goodInput, target_fps: 24 }, 'input.target_fps'],
    ['a fractional seed', { ...goodInput, seed: 1.5 }, 'input.seed'],
    ['instruction_prompt as a number', { ...goodInput, instruction_prompt: 3 }, 'input.instruction_prompt'],
    ['an unknown field', { ...goodInput, strength: 0.5 }, 'input.strength'],
  ])('rejects %s with a 400 naming %s', async (_name, input, field) => {
    const target = await emulator();
    const response = await run(target, { app: 'pruna/p-video-replace', input });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    const problem = response.json();
    expect(problem.type).toMatch(/\/errors\/invalid_request$/);
    expect(problem.detail).toContain(field);
    expect(target.emulator.state().submits).toBe(0);
  });

  it('names top-level fields too', async () => {
    const target = await emulator();
    const noInput = await run(target, { app: 'pruna/p-video-replace' });
    expect(noInput.json().detail).toMatch(/^input: /);
    const badHook = await run(target, { app: 'pruna/p-video-replace', input: goodInput, webhook: 'nope' });
    expect(badHook.json().detail).toMatch(/^webhook: /);
  });

  it('answers 404 for another app and accepts a pinned version', async () => {
    const target = await emulator();
    const other = await run(target, { app: 'someone/else', input: goodInput });
    expect(other.statusCode).toBe(404);
    expect(other.json().type).toMatch(/\/errors\/not_found$/);
    const pinned = await run(target, { app: 'pruna/p-video-replace@abc123', input: goodInput });
    expect(pinned.statusCode).toBe(200);
    const task = await target.inject({
      method: 'GET',
      url: `/tasks/${pinned.json().data.id}`,
      headers: auth,
    });
    expect(task.json().data.app_version_id).toBe('abc123');
  });

  it('accepts up to maxReferenceImages and all documented fields', async () => {
    const target = await emulator({ maxReferenceImages: 3 });
    const four = await run(target, {
      app: 'pruna/p-video-replace',
      input: { ...goodInput, images: Array(4).fill(goodInput.images[0]) },
    });
    expect(four.json().detail).toMatch(/input\.images: must hold 1 to 3/);
    const full = await run(target, {
      app: 'pruna/p-video-replace',
      input: {
        ...goodInput,
        instruction_prompt: null,
        resolution: '1080p',
        turbo: true,
        target_fps: '48',
        save_audio: false,
        ignore_audio: true,
        seed: 7,
        disable_safety_checker: true,
      },
      metadata: { job: 'j1' },
      infra: 'cloud',
    });
    expect(full.statusCode).toBe(200);
  });

  it('answers 400 problem for a body that is not JSON and 404 problem for unknown routes', async () => {
    const target = await emulator();
    const broken = await target.inject({
      method: 'POST',
      url: '/apps/run',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"app":',
    });
    expect(broken.statusCode).toBe(400);
    expect(broken.json().type).toMatch(/invalid_request$/);
    const missing = await target.inject({ method: 'GET', url: '/nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});

describe('envelopes', () => {
  it('wraps in V3 by default, and V1/V2 on request', async () => {
    const target = await emulator();
    const v3 = (await run(target, { app: 'pruna/p-video-replace', input: goodInput })).json();
    expect(v3).toEqual({
      data: expect.objectContaining({ id: expect.any(String), status: 1 }),
      messages: [],
    });
    expect(v3.data).toMatchObject({ short_id: expect.any(String), status_text: 'received', output: null });

    target.emulator.setFaults({ envelope: 'v1' });
    const v1 = (await run(target, { app: 'pruna/p-video-replace', input: goodInput })).json();
    expect(v1).toEqual({ success: true, status: 200, data: expect.objectContaining({ status: 1 }) });

    target.emulator.setFaults({ envelope: 'v2' });
    const v2 = (await run(target, { app: 'pruna/p-video-replace', input: goodInput })).json();
    expect(v2).toMatchObject({ id: expect.any(String), status: 1, status_text: 'received' });
    expect(v2).not.toHaveProperty('data');
  });

  it('takes the envelope from construction options, and never wraps problems', async () => {
    const target = await emulator({ faults: { envelope: 'v1' } });
    const status = await target.inject({ method: 'GET', url: '/tasks/none/status', headers: auth });
    expect(status.statusCode).toBe(404);
    expect(status.json()).not.toHaveProperty('success');
  });
});
