import { scrapeMetrics, waitFor } from '@recast/core/testing';
import { describe, expect, it } from 'vitest';
import { type System, systemPerTest } from './system.js';
import { startWorkerProcesses } from './worker-processes.js';

const { start, onCleanup } = systemPerTest();

const body = (s: System) => ({
  video: s.fixture('clip-2s-faststart.mp4'),
  images: [s.fixture('person-a.png')],
  duration_seconds: 2,
});

/** Provider tasks whose webhook URL names this job (any attempt), oldest first. */
async function tasksOf(s: System, jobId: string) {
  return (await s.providerTasksOldestFirst()).filter((t) =>
    (t as { webhook?: string }).webhook?.includes(`/webhooks/inference/${jobId}?`),
  ) as { id: string; webhook: string }[];
}

/** Tasks another client of the same provider account runs (no webhook of ours), all at once. */
async function otherClientTasks(s: System, count: number): Promise<Set<string>> {
  const ids = new Set<string>();
  const input = { video: s.fixture('clip-2s-faststart.mp4'), images: [s.fixture('person-b.jpg')] };
  let next = 0;
  await Promise.all(
    Array.from({ length: 24 }, async () => {
      while (next++ < count) ids.add((await s.client.run({ input })).id);
    }),
  );
  return ids;
}

/** What the provider billed for these tasks. */
async function billOf(s: System, taskIds: Iterable<string>): Promise<number> {
  const wanted = new Set(taskIds);
  const { bill } = await s.emulatorState();
  return bill.tasks.filter((line) => wanted.has(line.task_id)).reduce((sum, line) => sum + line.micro_usd, 0);
}

describe('a submit whose answer was lost, behind a deep provider task list', () => {
  for (const filters of [true, false]) {
    it(`finds its task under 600 newer tasks of another client (${filters ? 'list filtered by webhook URL' : 'provider without filters: the list is read to the claim'}); exactly one task`, async () => {
      // The worker runs as deployed, in its own process. Its first POST creates the task and the
      // answer is lost; before its retry looks, another client of the same account creates 600
      // tasks, all newer than the orphan: more than the five pages an orphan search used to read. Webhooks are lost too, and reconciliation is
      // slow (its defaults): only the dispatch's own search can find the task.
      const s = await start({
        noWorker: true,
        emulator: { stepMs: 20, faults: { lostRunAnswerRate: 1, webhookDropRate: 1, listFilters: filters } },
      });
      const first = await startWorkerProcesses(1, { ...s.workerEnv, ORPHAN_GRACE_MS: '3000' });
      onCleanup(() => first.stop());
      const job = await s.submit(body(s));
      await waitFor(async () => (await s.store.get(job.id))?.submit_ended_at, { what: 'the lost answer' });
      // That worker goes away with its dispatch step waiting to retry; the other client's tasks
      // arrive; then a worker comes back and the step resumes.
      await first.stop();
      await s.setFaults({ lostRunAnswerRate: 0 });
      const others = await otherClientTasks(s, 600);
      expect((await s.store.get(job.id))?.state).toBe('submitting');
      const second = await startWorkerProcesses(1, { ...s.workerEnv, ORPHAN_GRACE_MS: '3000' });
      onCleanup(() => second.stop());

      const done = await s.waitTerminal(job.id, 40_000);
      expect(done).toMatchObject({ state: 'completed', attempt: 1 });
      const tasks = await tasksOf(s, job.id);
      expect(tasks).toHaveLength(1);
      expect(tasks[0]?.webhook).toContain('attempt=1');
      expect(done.provider?.task_id).toBe(tasks[0]?.id);
      expect(others.size).toBe(600);
      // The ledger holds what the provider billed for this job's one task, and nothing else.
      expect((await s.costs(['resolution'])).total.micro_usd).toBe(await billOf(s, [tasks[0]!.id]));
    }, 90_000);
  }
});

describe('a second task the provider created for one run', () => {
  it('is charged as a duplicate line, shown on the job and in the costs report: ledger = bill', async () => {
    // A provider bug: every run becomes two tasks with the same webhook, both billed.
    const s = await start({ metrics: true, emulator: { stepMs: 20, faults: { duplicateRunRate: 1 } } });
    const job = await s.submit(body(s));
    const done = await s.waitTerminal(job.id);
    expect(done.state).toBe('completed');
    const tasks = await tasksOf(s, job.id);
    expect(tasks).toHaveLength(2);
    const view = await waitFor(async () => {
      const current = await s.getJob(job.id);
      return current.duplicates ? current : undefined;
    });
    const own = view.provider?.task_id;
    const other = tasks.map((t) => t.id).find((id) => id !== own)!;
    expect(view.duplicates).toEqual({
      task_ids: [other],
      micro_usd: await billOf(s, [other]),
      usd: expect.any(String),
    });
    expect(view.cost?.micro_usd).toBe(await billOf(s, [own!]));
    await s.drained();
    const state = await s.emulatorState();
    expect(state.bill.tasks).toHaveLength(2);
    const report = (await s.costs(['resolution'])).total;
    expect(report.micro_usd).toBe(state.bill.total_micro_usd);
    expect(report).toMatchObject({ jobs: 1, duplicates: 1, duplicate_micro_usd: await billOf(s, [other]) });
    const costs = (await (
      await fetch(`${s.apiUrl}/v1/costs?group_by=resolution`, { headers: { 'x-tenant': 'default' } })
    ).json()) as { total: { micro_usd: number; duplicates: number } };
    expect(costs.total).toMatchObject({ micro_usd: state.bill.total_micro_usd, duplicates: 1 });
    const metrics = await scrapeMetrics(s.metrics!.worker);
    expect(metrics.value('recast_duplicate_tasks_total', { outcome: 'charged' })).toBe(1);
  });
});
