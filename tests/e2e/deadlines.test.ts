import { describe, expect, it } from 'vitest';
import { type System, systemPerTest } from './system.js';

const { start } = systemPerTest();

const body = (s: System, extra: Record<string, unknown> = {}) => ({
  video: s.fixture('clip-2s-faststart.mp4'),
  images: [s.fixture('person-a.png')],
  duration_seconds: 2,
  ...extra,
});

async function timelineOf(s: System, id: string): Promise<string[]> {
  const res = await fetch(`${s.apiUrl}/v1/jobs/${id}/timeline`);
  return ((await res.json()) as { states: { state: string }[] }).states.map((entry) => entry.state);
}

describe('deadlines: a task the provider does not finish in time', () => {
  it('is cancelled at the provider past timeout_seconds; the job fails DEADLINE_EXCEEDED and frees its slot and money', async () => {
    // Each provider step takes 3 s: a task needs about 20 s, far past the 1-2 s deadlines below.
    const s = await start({
      emulator: { stepMs: 3_000 },
      // The reconcile interval is the deadline's resolution; the quiet-task poll stays far away.
      worker: { RECONCILE_INTERVAL_MS: '200', RECONCILE_AFTER_MS: '600000' },
      api: { JOB_TIMEOUT_SECONDS: '2' },
    });
    const own = await s.submit(body(s, { timeout_seconds: 1 }));
    const defaulted = await s.submit(body(s));
    const [a, b] = [await s.waitTerminal(own.id, 30_000), await s.waitTerminal(defaulted.id, 30_000)];

    for (const job of [a, b]) {
      expect(job).toMatchObject({ state: 'failed', cost: null, budget: { reserved_micro_usd: null } });
      expect(job.error?.code).toBe('DEADLINE_EXCEEDED');
      expect(job.error?.message).toMatch(/within \d s \(timeout_seconds\)$/);
      expect(await timelineOf(s, job.id)).toEqual(
        expect.arrayContaining(['queued', 'submitting', 'submitted', 'cancelling', 'failed']),
      );
      // The provider was asked to cancel it, and did: nothing billed.
      expect((await s.client.getTask(job.provider!.task_id)).status).toBe('cancelled');
    }
    expect(a.error?.message).toMatch(/within 1 s/);
    expect(b.error?.message).toMatch(/within 2 s/);
    const state = await s.emulatorState();
    expect(state.bill.total_micro_usd).toBe(0);
    expect((await s.costs(['resolution'])).total.micro_usd).toBe(0);
    expect(await s.redis.zcard(s.keys.limitsInFlight())).toBe(0);
    const usage = await s.budgets.usage('global', 'daily');
    expect(usage.reserved_micro_usd).toBe(0);
  });

  it('lets a task that ends in time complete, and refuses a bad timeout_seconds naming the field', async () => {
    const s = await start({ worker: { RECONCILE_INTERVAL_MS: '200' } });
    const fine = await s.submit(body(s, { timeout_seconds: 600 }));
    expect((await s.waitTerminal(fine.id)).state).toBe('completed');
    const record = await s.store.get(fine.id);
    expect(record?.timeout_seconds).toBe(600);
    expect(record?.deadline_ms).toBeGreaterThan(Date.parse(record!.submitted_at!));

    for (const bad of [0, 1.5, 'soon', 7 * 24 * 3600 + 1]) {
      const res = await fetch(`${s.apiUrl}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body(s, { timeout_seconds: bad })),
      });
      expect(res.status).toBe(400);
      const error = ((await res.json()) as { error: { issues: { path: string }[] } }).error;
      expect(error.issues.map((issue) => issue.path)).toEqual(['timeout_seconds']);
    }
  });
});
