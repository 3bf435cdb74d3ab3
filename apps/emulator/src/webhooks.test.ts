import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { FaultsPatch } from './faults.js';
import { type Receiver, type RunningEmulator, startEmulator, startReceiver } from './test-support.js';

let emu: RunningEmulator | undefined;
let receiver: Receiver | undefined;
afterEach(async () => {
  await emu?.close();
  await receiver?.close();
  emu = undefined;
  receiver = undefined;
});

async function setup(faults: FaultsPatch = {}) {
  emu = await startEmulator({ faults });
  receiver = await startReceiver();
  return { e: emu, hook: receiver };
}

/** Gives stray deliveries (duplicates, stale ones) time to arrive before counting. */
const settle = () => sleep(150);

describe('terminal webhook', () => {
  it('posts the slim task once, after the task is terminal', async () => {
    const { e, hook } = await setup();
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'), { webhook: hook.url });
    await hook.waitFor(1);
    await settle();
    expect(hook.received).toHaveLength(1);
    const [delivery] = hook.received;
    expect(delivery?.headers['content-type']).toBe('application/json');
    expect(delivery?.body).toEqual({
      id,
      status: 10,
      status_text: 'completed',
      output: expect.objectContaining({ video: expect.stringContaining(`/outputs/${id}.mp4`) }),
      error: null,
      session_id: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    // The webhook is a hint; confirming it with GET must already show the terminal state.
    const confirmed = await e.call('GET', `/tasks/${id}`);
    expect(confirmed.body).toMatchObject({ data: { status: 10, webhook: hook.url } });
    await vi.waitFor(() =>
      expect(e.app.emulator.state().webhooks).toEqual({
        sent: 1,
        dropped: 0,
        duplicated: 0,
        reordered: 0,
        failed: 0,
      }),
    );
  });

  it('fires for failed and cancelled tasks too', async () => {
    const { e, hook } = await setup();
    const failed = await e.submit(e.fixture('not-a-video.mp4'), { webhook: hook.url });
    const cancelled = await e.submit(e.fixture('clip-2s-faststart.mp4'), { webhook: hook.url });
    await e.call('POST', `/tasks/${cancelled}/cancel`);
    await hook.waitFor(2);
    const byId = new Map(hook.received.map((delivery) => [delivery.body.id, delivery.body]));
    expect(byId.get(failed)).toMatchObject({ status: 11, status_text: 'failed', error: expect.any(String) });
    expect(byId.get(cancelled)).toMatchObject({ status: 12, status_text: 'cancelled' });
  });

  it('wraps the body in {event, timestamp, data} when webhookShape is event', async () => {
    const { e, hook } = await setup({ webhookShape: 'event' });
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'), { webhook: hook.url });
    await hook.waitFor(1);
    expect(hook.received[0]?.body).toEqual({
      event: 'task.completed',
      timestamp: expect.any(String),
      data: expect.objectContaining({ id, status: 10, status_text: 'completed' }),
    });
  });

  it('drops every webhook under webhookDropRate 1, and the task still completes', async () => {
    const { e, hook } = await setup({ webhookDropRate: 1 });
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'), { webhook: hook.url });
    expect((await e.waitTerminal(id)).status_text).toBe('completed');
    await settle();
    expect(hook.received).toHaveLength(0);
    expect(e.app.emulator.state().webhooks).toMatchObject({ sent: 0, dropped: 1 });
  });

  it('sends the terminal webhook twice under webhookDuplicateRate 1', async () => {
    const { e, hook } = await setup({ webhookDuplicateRate: 1 });
    await e.submit(e.fixture('clip-2s-faststart.mp4'), { webhook: hook.url });
    await hook.waitFor(2);
    await settle();
    expect(hook.received).toHaveLength(2);
    expect(hook.received[0]?.body).toEqual(hook.received[1]?.body);
    expect(e.app.emulator.state().webhooks).toMatchObject({ sent: 2, duplicated: 1 });
  });

  it('follows the terminal webhook with a stale running one under webhookReorderRate 1', async () => {
    const { e, hook } = await setup({ webhookReorderRate: 1 });
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'), { webhook: hook.url });
    await hook.waitFor(2);
    const [terminal, stale] = hook.received.map((delivery) => delivery.body);
    expect(terminal).toMatchObject({ id, status: 10, status_text: 'completed' });
    expect(stale).toMatchObject({ id, status: 7, status_text: 'running', output: null });
    expect(Date.parse(String(stale?.updated_at))).toBeLessThan(Date.parse(String(terminal?.updated_at)));
    // The receiver sees the body before the emulator has read the answer and counted it as sent.
    await vi.waitFor(() => expect(e.app.emulator.state().webhooks).toMatchObject({ sent: 2, reordered: 1 }));
  });

  it('delays delivery by webhookDelayMs', async () => {
    const { e, hook } = await setup({ webhookDelayMs: 300 });
    const id = await e.submit(e.fixture('clip-2s-faststart.mp4'), { webhook: hook.url });
    const task = await e.waitTerminal(id);
    expect(hook.received).toHaveLength(0);
    await hook.waitFor(1);
    // A lower bound only: the delivery cannot come before the delay has passed.
    expect(hook.received[0]?.at ?? 0).toBeGreaterThanOrEqual(Date.parse(task.updated_at) + 290);
  });

  it('counts a receiver error as failed and does not retry', async () => {
    const { e, hook } = await setup();
    hook.status = 500;
    await e.submit(e.fixture('clip-2s-faststart.mp4'), { webhook: hook.url });
    await hook.waitFor(1);
    await settle();
    expect(hook.received).toHaveLength(1);
    expect(e.app.emulator.state().webhooks).toMatchObject({ sent: 0, failed: 1 });
  });

  it('sends nothing for a task without a webhook', async () => {
    const { e, hook } = await setup();
    await e.waitTerminal(await e.submit(e.fixture('clip-2s-faststart.mp4')));
    await settle();
    expect(hook.received).toHaveLength(0);
    expect(e.app.emulator.state().webhooks.sent).toBe(0);
  });
});
