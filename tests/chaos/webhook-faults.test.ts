import { expect, it } from 'vitest';
import { audit, describeFailures, invariantFailures } from './audit.js';
import { type ChaosSystem, printDetail, printSummary, startChaosSystem, took } from './harness.js';
import { jobBody, tenantHeader } from './jobs.js';

const JOBS = 300;

/**
 * Invariants 2 and 4 with an unreliable provider: 10% of terminal webhooks never sent, 10% sent
 * twice, 10% followed by a stale `running` one. Lost webhooks must be made up for by polling
 * (reconciliation); duplicates and stale updates must neither move a job backwards nor charge it
 * twice: exactly one ledger entry per completed job, and the ledger equals the bill.
 */
it('finishes every job and charges each exactly once when webhooks are dropped, duplicated and reordered', async () => {
  const system: ChaosSystem = await startChaosSystem({
    scenario: 'webhook-faults',
    workers: 2,
    emulator: {
      stepMs: 25,
      faults: { webhookDropRate: 0.1, webhookDuplicateRate: 0.1, webhookReorderRate: 0.1 },
    },
  });
  let passed = false;
  try {
    const submitted = await system.submitJobs({
      count: JOBS,
      body: jobBody(system),
      headers: tenantHeader,
      ratePerSec: 30,
      concurrency: 16,
    });
    const ids = submitted.accepted.map((a) => a.id);

    const wait = await system.waitAllTerminal(ids, { timeoutMs: 90_000, stallMs: 30_000 });
    const left = await system.quiesce(wait.done ? 20_000 : 5_000);
    const result = await audit(system, ids);
    const crashes = system.crashes();
    const hooks = result.emulator.webhooks;
    const completed = result.byState.completed ?? 0;

    printSummary('webhook-faults', {
      jobs: ids.length,
      refused: submitted.refused.length,
      terminal: result.terminal,
      completed,
      failed: result.byState.failed ?? 0,
      lost: result.lost.length,
      webhooks_dropped: hooks.dropped,
      webhooks_duplicated: hooks.duplicated,
      webhooks_reordered: hooks.reordered,
      ledger_entries: result.ledgerEntries,
      report_jobs: result.reportJobs,
      double_submitted: result.doubleSubmitted.length,
      per_job_mismatch: result.perJobMismatches.length,
      ledger_diff_micro_usd: result.ledgerDiff,
      report_diff_micro_usd: result.reportDiff,
      reservations_left: left.reservations,
      in_flight_left: left.in_flight_slots,
      crashes: crashes.length,
      took: took(system),
    });
    if (!wait.done) printDetail(`[chaos] webhook-faults: wait ended: ${wait.why}`);
    if (crashes.length > 0)
      printDetail(`[chaos] webhook-faults: unexpected exits: ${JSON.stringify(crashes)}`);

    const failures: string[] = [];
    const check = (ok: boolean, what: string) => ok || failures.push(what);
    check(submitted.refused.length === 0, `${submitted.refused.length} submits refused`);
    // Each fault must actually have happened, or this run tested nothing.
    check(hooks.dropped > 0 && hooks.duplicated > 0 && hooks.reordered > 0, 'a webhook fault never fired');
    check(result.lost.length === 0, `${result.lost.length} jobs not terminal`);
    check(
      (result.byState.failed ?? 0) === 0,
      `${result.byState.failed} jobs failed with no task failure injected`,
    );
    check(
      result.completedUncharged.length === 0,
      `${result.completedUncharged.length} completed jobs not charged`,
    );
    check(
      result.ledgerEntries === completed,
      `${result.ledgerEntries} ledger entries for ${completed} completed`,
    );
    check(
      result.reportJobs === completed,
      `cost report counts ${result.reportJobs} jobs for ${completed} completed`,
    );
    failures.push(...invariantFailures(result, left, crashes));
    if (failures.length > 0) printDetail(await describeFailures(system, result));
    expect(failures).toEqual([]);
    passed = true;
  } finally {
    await system.close({ keepLogs: !passed });
  }
});
