import { expect, it } from 'vitest';
import { audit, describeFailures, invariantFailures } from './audit.js';
import { type ChaosSystem, printDetail, printSummary, sleep, startChaosSystem, took } from './harness.js';
import { jobBody, tenantHeader } from './jobs.js';

const JOBS = 1000;
const WORKERS = 4;
const KILLS = 20;
/** Tasks per second another client of the same provider account creates meanwhile. */
const OTHER_CLIENT_RATE = 50;

/**
 * Invariants 2 and 3 under worker crashes: 1,000 jobs flow in while a random worker process is
 * SIGKILLed every 2-4 s (20 times, each respawned at once). Submit answers come back 100-400 ms
 * after the provider created the task, so kills land between "the provider has a task" and "we
 * recorded its id" (counted as interrupted_submits): the orphan that must be found and adopted,
 * never submitted again. Another client of the same provider account creates 50 tasks a second
 * all along (the provider quota raised, as for a busy account), so an orphan is buried under
 * hundreds of newer tasks by the time its search runs: deeper than any fixed number of pages.
 */
it('loses no job, submits no (job, attempt) twice and pays exactly the bill while workers are SIGKILLed', async () => {
  const system: ChaosSystem = await startChaosSystem({
    scenario: 'worker-kills',
    workers: WORKERS,
    // Tasks run ~8 s, longer than a dead worker's steps take to be noticed (WORKER_LOCK_MS=3000):
    // a submit cut short is picked up again while its task still runs, as with real minutes-long
    // tasks, so nothing but adoption keeps it from being submitted twice.
    emulator: { stepMs: 1_200 },
    slowSubmitAnswers: { min: 100, max: 400 },
  });
  let passed = false;
  try {
    // Jobs arrive over the whole kill window (~60 s), so every kill finds work in progress.
    const submitting = system.submitJobs({
      count: JOBS,
      body: jobBody(system),
      headers: tenantHeader,
      ratePerSec: 16,
      concurrency: 16,
    });
    const killing = (async () => {
      await sleep(2_000);
      for (let k = 0; k < KILLS; k++) {
        await sleep(2_000 + Math.random() * 2_000);
        await system.killRandomWorker();
      }
    })();
    const otherClient = system.startOtherClient(OTHER_CLIENT_RATE);
    const [submitted] = await Promise.all([submitting, killing]);
    const others = await otherClient.stop();
    const ids = submitted.accepted.map((a) => a.id);

    const wait = await system.waitAllTerminal(ids, { timeoutMs: 120_000, stallMs: 45_000 });
    const left = await system.quiesce(wait.done ? 20_000 : 5_000);
    const result = await audit(system, ids, others);
    const crashes = system.crashes();
    const interrupted = system.proxy!.interruptedSubmits();

    printSummary('worker-kills', {
      jobs: ids.length,
      refused: submitted.refused.length,
      terminal: result.terminal,
      completed: result.byState.completed ?? 0,
      failed: result.byState.failed ?? 0,
      lost: result.lost.length,
      kills: system.kills.length,
      interrupted_submits: interrupted,
      other_client_tasks: others.size,
      provider_tasks: result.providerTasks,
      double_submitted: result.doubleSubmitted.length,
      per_job_mismatch: result.perJobMismatches.length,
      ledger_micro_usd: result.ledgerTotal,
      bill_micro_usd: result.billTotal,
      ledger_diff_micro_usd: result.ledgerDiff,
      report_diff_micro_usd: result.reportDiff,
      reservations_left: left.reservations,
      in_flight_left: left.in_flight_slots,
      crashes: crashes.length,
      took: took(system),
    });
    if (!wait.done) printDetail(`[chaos] worker-kills: wait ended: ${wait.why}`);
    if (crashes.length > 0) printDetail(`[chaos] worker-kills: unexpected exits: ${JSON.stringify(crashes)}`);

    const failures: string[] = [];
    const check = (ok: boolean, what: string) => ok || failures.push(what);
    check(submitted.refused.length === 0, `${submitted.refused.length} submits refused`);
    check(system.kills.length === KILLS, `${system.kills.length} kills, not ${KILLS}`);
    // The scenario must have hit submits in flight, or it did not test adoption at all.
    check(interrupted > 0, 'no kill interrupted a submit');
    check(others.size > 1000, `the other client created only ${others.size} tasks`);
    check(result.lost.length === 0, `${result.lost.length} jobs not terminal`);
    check((result.byState.failed ?? 0) === 0, `${result.byState.failed} jobs failed with no fault injected`);
    failures.push(...invariantFailures(result, left, crashes));
    if (failures.length > 0) printDetail(await describeFailures(system, result));
    expect(failures).toEqual([]);
    passed = true;
  } finally {
    await system.close({ keepLogs: !passed });
  }
});
