import { JobTimelineSchema } from '@recast/core/contract';
import { describe, expect, it } from 'vitest';
import { type System, systemPerTest } from './system.js';

const { start } = systemPerTest();

function job(s: System) {
  return {
    video: s.fixture('clip-2s-faststart.mp4'),
    images: [s.fixture('person-a.png')],
    duration_seconds: 2,
  };
}

async function timeline(s: System, id: string, tenant?: string) {
  const res = await fetch(`${s.apiUrl}/v1/jobs/${id}/timeline`, {
    headers: { ...s.authHeaders, ...(tenant ? { 'x-tenant': tenant } : {}) },
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("a job's timeline: its states, and its provider task's events and logs", () => {
  it('lists every state a finished job entered, in order, with the task the provider ran and its logs', async () => {
    const s = await start();
    const submitted = await s.submit(job(s));
    const done = await s.waitTerminal(submitted.id);
    expect(done.state).toBe('completed');

    const { status, body } = await timeline(s, done.id);
    expect(status).toBe(200);
    const view = JobTimelineSchema.parse(body);
    const states = view.states.map((entry) => entry.state);
    expect(states[0]).toBe('queued');
    expect(states.at(-1)).toBe('completed');
    expect(states).toContain('submitting');
    expect(states).toContain('submitted');
    expect(view.states[0]!.at).toBe(done.created_at);
    const times = view.states.map((entry) => Date.parse(entry.at));
    expect([...times].sort((a, b) => a - b)).toEqual(times);

    // The provider's side, as the emulator ran it: its status moves and the app's run logs.
    expect(view.provider).toMatchObject({
      task_id: done.provider!.task_id,
      status: 'completed',
      error: null,
    });
    expect(view.provider!.events.map((event) => event.status).at(-1)).toBe('completed');
    expect(view.provider!.events.every((event) => event.at !== null)).toBe(true);
    const logs = view.provider!.logs;
    expect(logs.map((log) => log.content)).toContain('Prediction completed successfully');
    expect(logs.every((log) => log.type === 'run')).toBe(true);
    // What the emulator holds for the task is what the timeline shows, line for line.
    const held = await s.client.getTask(done.provider!.task_id);
    expect(logs.map((log) => log.content)).toEqual(held.logs.map((log) => log.content));
    expect(view.provider!.events.map((event) => event.status)).toEqual(
      held.events.map((event) => event.status),
    );

    // Another tenant's job, and an id that is not a job, do not exist for the caller.
    expect((await timeline(s, done.id, 'someone-else')).status).toBe(404);
    expect((await timeline(s, 'job_01KBNOTAJOB0000000000000000')).status).toBe(404);
    expect((await timeline(s, 'nonsense')).status).toBe(404);
  });

  it('has no provider part while the job has no task, and says why when the provider cannot be read', async () => {
    const s = await start({ noWorker: true });
    const queued = await s.submit(job(s));
    const waiting = await timeline(s, queued.id);
    expect(waiting.status).toBe(200);
    expect(JobTimelineSchema.parse(waiting.body)).toMatchObject({
      state: 'queued',
      states: [{ state: 'queued', at: queued.created_at }],
      provider: null,
    });

    await s.startWorker();
    const done = await s.waitTerminal(queued.id);
    // The provider answers 500 to every call: the timeline still answers, with the reason.
    await s.setFaults({ serverErrorRate: 1 });
    const unreadable = await timeline(s, done.id);
    expect(unreadable.status).toBe(200);
    const view = JobTimelineSchema.parse(unreadable.body);
    expect(view.states.at(-1)?.state).toBe('completed');
    expect(view.provider).toMatchObject({
      task_id: done.provider!.task_id,
      status: null,
      events: [],
      logs: [],
    });
    expect(view.provider!.error).toMatch(/^PROVIDER_\w+: /);
  });
});
