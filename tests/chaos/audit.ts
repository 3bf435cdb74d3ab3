import { costReport } from '@recast/core/money';
import type { ChaosSystem, EmulatorState, EmulatorTask, JobRow } from './harness.js';
import { isTerminal, OTHER_CLIENT_WEBHOOK } from './harness.js';

export interface Audit {
  jobs: number;
  terminal: number;
  byState: Record<string, number>;
  /** Accepted (2xx) jobs that are not terminal, or whose record is gone. */
  lost: JobRow[];
  /** (job, attempt) pairs the provider holds more than one task for. */
  doubleSubmitted: { jobId: string; attempt: string; tasks: string[] }[];
  /** Provider tasks whose webhook names no job of this deployment. */
  foreignTasks: EmulatorTask[];
  /** Accepted jobs whose ledger charge differs from what the provider billed for their tasks. */
  perJobMismatches: {
    jobId: string;
    state?: string | undefined;
    ledger: number | undefined;
    record: number | undefined;
    billed: number;
    tasks: string[];
  }[];
  /** Completed jobs with no ledger entry. */
  completedUncharged: string[];
  ledgerTotal: number;
  ledgerEntries: number;
  reportTotal: number;
  reportJobs: number;
  billTotal: number;
  billLines: number;
  /** ledger total − provider bill, in micro-dollars. */
  ledgerDiff: number;
  /** cost report total − sum of ledger entries (the report's counters vs the entries). */
  reportDiff: number;
  emulator: EmulatorState;
  providerTasks: number;
}

const WEBHOOK_PATH = /\/webhooks\/inference\/([^/?#]+)/;

/** Which job and attempt a provider task belongs to, from the webhook URL it was submitted with. */
export function taskOwner(task: EmulatorTask): { jobId: string; attempt: string } | undefined {
  if (!task.webhook) return undefined;
  const url = new URL(task.webhook);
  const match = WEBHOOK_PATH.exec(url.pathname);
  if (!match) return undefined;
  return { jobId: decodeURIComponent(match[1]!), attempt: url.searchParams.get('attempt') ?? '?' };
}

/**
 * Hold the system to its promises for the jobs it accepted: each is terminal; the provider ran at
 * most one task per (job, attempt); each job's ledger charge is what the provider billed for its
 * tasks (our record and our ledger agreeing too); and the ledger in total is the provider's bill.
 */
export async function audit(
  system: ChaosSystem,
  ids: string[],
  /** Tasks another client of the same provider account ran: neither ours nor foreign, and not on our bill. */
  otherClient: Set<string> = new Set(),
): Promise<Audit> {
  const rows = await system.readJobs(ids);
  const byState: Record<string, number> = {};
  const lost: JobRow[] = [];
  for (const row of rows.values()) {
    const state = row.state ?? 'MISSING';
    byState[state] = (byState[state] ?? 0) + 1;
    if (!isTerminal(row.state)) lost.push(row);
  }

  const emulator = await system.emulatorState();
  // The other client's tasks, by id or by its webhook (one whose answer it never read has no id).
  const all = await system.emulatorTasks();
  for (const task of all) if (task.webhook === OTHER_CLIENT_WEBHOOK) otherClient.add(task.id);
  const tasks = all.filter((t) => !otherClient.has(t.id));
  const ourBill = emulator.bill.tasks.filter((line) => !otherClient.has(line.task_id));
  const billTotal = ourBill.reduce((sum, line) => sum + line.micro_usd, 0);
  const billed = new Map(ourBill.map((line) => [line.task_id, line.micro_usd]));
  const perAttempt = new Map<string, string[]>();
  const tasksOfJob = new Map<string, string[]>();
  const foreignTasks: EmulatorTask[] = [];
  const ourJobs = new Set<string>();
  for (const task of tasks) {
    const owner = taskOwner(task);
    if (!owner?.jobId.startsWith('job_')) {
      foreignTasks.push(task);
      continue;
    }
    ourJobs.add(owner.jobId);
    const key = `${owner.jobId}#${owner.attempt}`;
    perAttempt.set(key, [...(perAttempt.get(key) ?? []), task.id]);
    tasksOfJob.set(owner.jobId, [...(tasksOfJob.get(owner.jobId) ?? []), task.id]);
  }
  // A task for a job id this deployment never heard of (not even a refused submit that got
  // through) is foreign too.
  const unknown = [...ourJobs].filter((id) => !rows.has(id));
  if (unknown.length > 0) {
    const exists = await Promise.all(unknown.map((id) => system.client.exists(system.keys.job(id))));
    unknown.forEach((id, i) => {
      if (!exists[i]) foreignTasks.push(...tasks.filter((t) => taskOwner(t)?.jobId === id));
    });
  }
  const doubleSubmitted = [...perAttempt.entries()]
    .filter(([, list]) => list.length > 1)
    .map(([key, list]) => {
      const [jobId, attempt] = key.split('#') as [string, string];
      return { jobId, attempt, tasks: list };
    });

  // Every ledger entry of this deployment (not only the accepted jobs'), read through the Ledger,
  // summed per job: its run, and any retried failure or duplicate task (`<job id>#...` lines).
  const charged = await system.client.hkeys(system.keys.ledgerCharged());
  const entries = await Promise.all(charged.map((chargeId) => system.ledger.chargeOf(chargeId)));
  const chargeOf = new Map<string, number>();
  charged.forEach((chargeId, i) => {
    const jobId = chargeId.split('#')[0]!;
    chargeOf.set(jobId, (chargeOf.get(jobId) ?? 0) + (entries[i]?.microUsd ?? 0));
  });
  const ledgerTotal = [...chargeOf.values()].reduce((a, b) => a + b, 0);
  const ownRun = new Map(
    charged.flatMap((chargeId, i) => (chargeId.includes('#') ? [] : [[chargeId, entries[i]?.microUsd]])),
  );
  const perJobMismatches: Audit['perJobMismatches'] = [];
  const completedUncharged: string[] = [];
  for (const row of rows.values()) {
    const own = tasksOfJob.get(row.id) ?? [];
    const bill = own.reduce((sum, taskId) => sum + (billed.get(taskId) ?? 0), 0);
    const ledger = chargeOf.get(row.id);
    // The record's cost is its final run's; retried failures and duplicates are lines of their own.
    const recordOk = row.state !== 'completed' || row.cost_micro_usd === ownRun.get(row.id);
    if ((ledger ?? 0) !== bill || !recordOk)
      perJobMismatches.push({
        jobId: row.id,
        state: row.state,
        ledger,
        record: row.cost_micro_usd,
        billed: bill,
        tasks: own,
      });
    if (row.state === 'completed' && ledger === undefined) completedUncharged.push(row.id);
  }

  const today = new Date();
  const yesterday = new Date(today.getTime() - 86_400_000);
  const report = await costReport(system.client, system.keys, {
    from: yesterday.toISOString().slice(0, 10),
    to: today.toISOString().slice(0, 10),
    groupBy: [],
  });

  return {
    jobs: ids.length,
    terminal: ids.length - lost.length,
    byState,
    lost,
    doubleSubmitted,
    foreignTasks,
    perJobMismatches,
    completedUncharged,
    ledgerTotal,
    ledgerEntries: charged.length,
    reportTotal: report.total.micro_usd,
    reportJobs: report.total.jobs,
    billTotal,
    billLines: ourBill.length,
    ledgerDiff: ledgerTotal - billTotal,
    reportDiff: report.total.micro_usd - ledgerTotal,
    emulator,
    providerTasks: tasks.length,
  };
}

/** The facts a failed scenario needs in its report: which jobs, in which state, what the logs say. */
export async function describeFailures(system: ChaosSystem, result: Audit): Promise<string> {
  const parts: string[] = [`[chaos] ${system.scenario}: logs in ${system.logDir}`];
  parts.push(`states: ${JSON.stringify(result.byState)}`);
  if (result.lost.length > 0) {
    const sample = result.lost.slice(0, 20);
    parts.push(
      `lost (${result.lost.length}): ${sample
        .map((r) => `${r.id} state=${r.state} attempt=${r.attempt} task=${r.task_id ?? '-'}`)
        .join('; ')}`,
    );
  }
  if (result.doubleSubmitted.length > 0)
    parts.push(
      `double-submitted (${result.doubleSubmitted.length}): ${result.doubleSubmitted
        .slice(0, 20)
        .map((d) => `${d.jobId}#${d.attempt}=[${d.tasks.join(',')}]`)
        .join('; ')}`,
    );
  if (result.perJobMismatches.length > 0)
    parts.push(
      `ledger vs bill per job (${result.perJobMismatches.length}): ${result.perJobMismatches
        .slice(0, 20)
        .map(
          (m) =>
            `${m.jobId} state=${m.state} ledger=${m.ledger ?? '-'} record=${m.record ?? '-'} billed=${m.billed} tasks=[${m.tasks.join(',')}]`,
        )
        .join('; ')}`,
    );
  if (result.foreignTasks.length > 0)
    parts.push(`foreign tasks: ${result.foreignTasks.map((t) => `${t.id} ${t.webhook}`).join('; ')}`);
  const needles = [
    ...result.lost.slice(0, 4).map((r) => r.id),
    ...result.doubleSubmitted.slice(0, 4).map((d) => d.jobId),
    ...result.perJobMismatches.slice(0, 3).map((m) => m.jobId),
  ];
  if (result.lost.length > 0) parts.push(await system.whereAre(result.lost.slice(0, 10).map((r) => r.id)));
  // Reservations still held once everything is terminal: whose, and where those jobs are.
  const reserved = await system.client.hkeys(system.keys.reservations());
  if (reserved.length > 0) parts.push(`reserved: ${await system.whereAre(reserved.slice(0, 10))}`);
  needles.push(...reserved.slice(0, 3));
  if (needles.length > 0) parts.push(await system.evidence([...new Set(needles)]));
  return parts.join('\n');
}

/**
 * The invariants every scenario checks at the end (ARCHITECTURE.md 2-4 and the ledger): no double
 * submission, no task of no job, every job charged what it was billed, ledger = bill = report, and
 * nothing left held. Each failure is a sentence for the report.
 */
export function invariantFailures(
  result: Audit,
  left: { reservations: number; in_flight_slots: number },
  crashes: readonly unknown[],
): string[] {
  const failures: string[] = [];
  const check = (ok: boolean, what: string) => ok || failures.push(what);
  check(
    result.doubleSubmitted.length === 0,
    `${result.doubleSubmitted.length} (job, attempt) submitted twice`,
  );
  check(result.foreignTasks.length === 0, `${result.foreignTasks.length} provider tasks of no job`);
  check(result.perJobMismatches.length === 0, `${result.perJobMismatches.length} jobs charged ≠ billed`);
  check(result.ledgerDiff === 0, `ledger − bill = ${result.ledgerDiff} µ$`);
  check(result.reportDiff === 0, `cost report − ledger = ${result.reportDiff} µ$`);
  check(left.reservations === 0, `${left.reservations} reservations never released`);
  check(left.in_flight_slots === 0, `${left.in_flight_slots} in-flight slots never released`);
  check(crashes.length === 0, `${crashes.length} processes exited by themselves`);
  return failures;
}
