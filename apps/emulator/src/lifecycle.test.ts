import { afterEach, describe, expect, it } from 'vitest';
import { chargeMicroUsd } from './billing.js';
import { dataOf, type RunningEmulator, startEmulator, type TaskJson } from './test-support.js';

let emu: RunningEmulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

async function start(options: Parameters<typeof startEmulator>[0] = {}) {
  emu = await startEmulator(options);
  return emu;
}

describe('task lifecycle', () => {
  it('walks every status to completed with the app-like logs and the full Task shape', async () => {
    const e = await start();
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'), { input: { resolution: '720p' } });
    const task = await e.waitTerminal(id);

    expect(task.events.map((event) => event.status)).toEqual([1, 2, 3, 4, 7, 9, 10]);
    expect(task).toMatchObject({ status: 10, status_text: 'completed', app_version_id: '11n0716p' });
    expect(task.error ?? undefined).toBeUndefined();
    expect(task.logs.every((log) => log.log_type === 1)).toBe(true);
    expect(task.logs.map((log) => log.content)).toEqual([
      'Replacing characters, resolution: 720p',
      'Reference images: 2',
      'Uploading source video...',
      'Status: processing, waiting... (10s)',
      'Prediction completed successfully',
      'Video replaced: 2.0s at 720p',
    ]);
    for (const key of ['input', 'logs', 'events', 'webhook', 'app_id', 'app_version_id', 'usage_events']) {
      expect(task, key).toHaveProperty(key);
    }
    expect(task.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(task.usage_events).toEqual([expect.objectContaining({ quantity: 2 })]);
    expect(task.output).toEqual({
      video: `${e.url}/outputs/${id}.mp4`,
      seed: expect.any(Number),
      output_meta: {
        outputs: [
          {
            type: 'video',
            width: 1280,
            height: 720,
            resolution: '720p',
            seconds: 2,
            fps: 24,
            extra: { resolution: '720p' },
          },
        ],
      },
    });
  });

  it('reports 1080p dimensions, the requested fps and the requested seed', async () => {
    const e = await start();
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'), {
      input: { resolution: '1080p', target_fps: '48', seed: 1234 },
    });
    const task = await e.waitTerminal(id);
    expect(task.output).toMatchObject({
      seed: 1234,
      output_meta: { outputs: [{ width: 1920, height: 1080, resolution: '1080p', fps: 48 }] },
    });
  });

  // clip-7.5s-audio.mp4: the fixture README calls its video track 7.500 s, but its header says
  // otherwise: the video track is 188 frames at 25 fps (tkhd 7520 ms, mdhd 96256/12800), and it is
  // the AUDIO track that lasts 7.500 s. The emulator reports the video track, so 7.52.
  it.each([
    ['clip-2s-faststart.mp4', 2],
    ['clip-5s-moov-at-end.mp4', 5],
    ['clip-7.5s-audio.mp4', 7.52],
    ['clip-3s.mov', 3],
  ])('reports the video track duration of %s (%s s) and bills it', async (name, seconds) => {
    const e = await start();
    const id = await e.submit(e.fixture(name));
    const task = await e.waitTerminal(id);
    expect(task.status_text).toBe('completed');
    expect(task.output?.output_meta.outputs[0]?.seconds).toBe(seconds);
    const { bill } = e.app.emulator.state();
    expect(bill.total_micro_usd).toBe(Math.round(seconds * 30_000));
    expect(bill.tasks).toEqual([
      {
        task_id: id,
        resolution: '720p',
        seconds,
        micro_usd: Math.round(seconds * 30_000),
        completed_at: task.updated_at,
      },
    ]);
  });

  it.each([
    ['not-a-video.mp4', /no readable MP4\/MOV header/],
    ['truncated.mp4', /no readable MP4\/MOV header/],
    ['missing.mp4', /HTTP 404/],
  ])('fails %s at preparing, bills nothing', async (name, reason) => {
    const e = await start();
    const id = await e.submit(e.fixture(name));
    const task = await e.waitTerminal(id);
    expect(task).toMatchObject({ status: 11, status_text: 'failed', output: null });
    expect(task.error).toMatch(/^Failed to load input video: /);
    expect(task.error).toMatch(reason);
    expect(task.events.map((event) => event.status)).toEqual([1, 2, 3, 4, 11]);
    const state = e.app.emulator.state();
    expect(state.bill.total_micro_usd).toBe(0);
    expect(state.tasks.by_status).toEqual({ failed: 1 });
  });

  it.each([
    [
      'an unreachable image',
      (_e: RunningEmulator) => 'http://127.0.0.1:9/person.png',
      /ECONNREFUSED|fetch failed/,
    ],
    ['a missing image', (e: RunningEmulator) => e.fixture('nobody.png'), /HTTP 404/],
    [
      'a video given as an image',
      (e: RunningEmulator) => e.fixture('clip-2s-faststart.mp4'),
      /is not an image/,
    ],
  ])('downloads the reference images: %s fails the task at preparing, unbilled', async (_, image, reason) => {
    const e = await start({ download: { timeoutMs: 2000 } });
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'), {
      input: { images: [e.fixture('person-a.png'), image(e)] },
    });
    const task = await e.waitTerminal(id);
    expect(task).toMatchObject({ status: 11, status_text: 'failed', output: null });
    expect(task.error).toMatch(/^Failed to load reference images: /);
    expect(task.error).toMatch(reason);
    expect(task.events.map((event) => event.status)).toEqual([1, 2, 3, 4, 11]);
    expect(e.app.emulator.state().bill.total_micro_usd).toBe(0);
  });

  it('completes with reference images in every format it reads', async () => {
    const e = await start();
    const images = ['person-a.png', 'person-b.jpg', 'person-c.webp'].map((name) => e.fixture(name));
    const task = await e.waitTerminal(
      await e.submit(e.fixture('clip-2s-faststart.mp4'), { input: { images } }),
    );
    expect(task.status_text).toBe('completed');
  });

  it('fails an unreachable host without hanging', async () => {
    const e = await start({ download: { timeoutMs: 2000 } });
    const id = await e.submit('http://127.0.0.1:9/video.mp4');
    expect((await e.waitTerminal(id)).status_text).toBe('failed');
  });

  it('fails a video over the size cap', async () => {
    const e = await start({ download: { maxBytes: 1024 } });
    const task = await e.waitTerminal(await e.submit(e.fixture('clip-2s-faststart.mp4')));
    expect(task.error).toMatch(/larger than 1024 bytes/);
  });

  it('bills seconds × price per resolution in integer micro-dollars, across tasks', async () => {
    const e = await start({ prices: { '1080p': 60_001 } });
    const a = await e.submit(e.fixture('clip-7.5s-audio.mp4'), { input: { resolution: '1080p' } });
    const b = await e.submit(e.fixture('clip-5s-moov-at-end.mp4'));
    await e.waitTerminal(a);
    await e.waitTerminal(b);
    const { bill } = e.app.emulator.state();
    // 7.52 s × 60001 µ$/s = 451207.52 → 451208 (half up); 5 s × 30000 = 150000.
    expect(bill.by_resolution['1080p']).toEqual({ tasks: 1, seconds: 7.52, micro_usd: 451_208 });
    expect(bill.by_resolution['720p']).toEqual({ tasks: 1, seconds: 5, micro_usd: 150_000 });
    expect(bill.total_micro_usd).toBe(601_208);
  });

  it('applies billingSkew to the reported seconds, and the bill follows the report', async () => {
    const e = await start({ faults: { billingSkew: 1.1 } });
    const task = await e.waitTerminal(await e.submit(e.fixture('clip-5s-moov-at-end.mp4')));
    expect(task.output?.output_meta.outputs[0]?.seconds).toBe(5.5);
    expect(e.app.emulator.state().bill.total_micro_usd).toBe(chargeMicroUsd(5.5, 30_000));
  });

  it('fails tasks at the running stage under failureRate 1, billing nothing', async () => {
    const e = await start({ faults: { failureRate: 1 } });
    const task = await e.waitTerminal(await e.submit(e.fixture('clip-2s-faststart.mp4')));
    expect(task.events.map((event) => event.status)).toEqual([1, 2, 3, 4, 7, 11]);
    expect(task.error).toMatch(/Prediction failed/);
    expect(task.logs.at(-1)?.content).toBe(task.error);
    const state = e.app.emulator.state();
    expect(state.bill).toMatchObject({ total_micro_usd: 0, tasks: [] });
    expect(state.in_flight).toEqual({ current: 0, max: 1 });
  });

  it('serves the output video with range support once completed', async () => {
    const e = await start();
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'));
    const early = await fetch(`${e.url}/outputs/${id}.mp4`);
    expect(early.status).toBe(404);
    await early.body?.cancel();
    const task = await e.waitTerminal(id);
    const source = Buffer.from(await (await fetch(e.fixture('clip-2s-faststart.mp4'))).arrayBuffer());
    const whole = await fetch(task.output?.video ?? '');
    expect(whole.headers.get('content-type')).toBe('video/mp4');
    expect(Buffer.from(await whole.arrayBuffer()).equals(source)).toBe(true);
    const tail = await fetch(task.output?.video ?? '', { headers: { range: 'bytes=-100' } });
    expect(tail.status).toBe(206);
    expect(tail.headers.get('content-range')).toBe(
      `bytes ${source.length - 100}-${source.length - 1}/${source.length}`,
    );
    expect(Buffer.from(await tail.arrayBuffer()).equals(source.subarray(source.length - 100))).toBe(true);
  });

  it('holds a wait:true run until the end, and answers 422 for a failed one', async () => {
    const e = await start();
    const body = (video: string) => ({ app: 'pruna/p-video-replace', input: e.runInput(video), wait: true });
    const ok = await e.call('POST', '/apps/run', body(e.fixture('clip-2s-faststart.mp4')));
    expect(ok.status).toBe(200);
    expect(dataOf<TaskJson>(ok.body)).toMatchObject({ status: 10, status_text: 'completed' });
    const failed = await e.call('POST', '/apps/run', body(e.fixture('not-a-video.mp4')));
    expect(failed.status).toBe(422);
    expect(failed.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('uses publicUrl for the URLs it hands out', async () => {
    const e = await start({ publicUrl: 'http://emulator.test:4010/' });
    const task = await e.waitTerminal(await e.submit(e.fixture('clip-2s-faststart.mp4')));
    expect(task.output?.video).toBe(`http://emulator.test:4010/outputs/${task.id}.mp4`);
  });

  it('counts submits, in-flight tasks and requests in the admin state', async () => {
    const e = await start({ stepMs: 50 });
    const ids = [
      await e.submit(e.fixture('clip-2s-faststart.mp4')),
      await e.submit(e.fixture('clip-2s-faststart.mp4')),
      await e.submit(e.fixture('clip-2s-faststart.mp4')),
    ];
    const during = e.app.emulator.state();
    expect(during.in_flight.current).toBe(3);
    for (const id of ids) await e.waitTerminal(id);
    const after = e.app.emulator.state();
    expect(after).toMatchObject({ submits: 3, in_flight: { current: 0, max: 3 }, tasks: { total: 3 } });
    expect(after.requests.filter((r) => r.route === '/apps/run')).toHaveLength(3);
    expect(after.requests[0]).toEqual({
      at: expect.any(Number),
      method: 'POST',
      route: '/apps/run',
      status: 200,
    });
    expect(after.requests.some((r) => r.route === '/tasks/:id' && r.method === 'GET')).toBe(true);
  });
});
