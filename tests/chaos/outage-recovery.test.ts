import { expect, it } from 'vitest';
import { audit, describeFailures, invariantFailures } from './audit.js';
import { type ChaosSystem, printDetail, printSummary, sleep, startChaosSystem, took } from './harness.js';
import { jobBody, tenantHeader } from './jobs.js';

const JOBS = 100;
const DOWN_MS = 10_000;
/** The goal: every job terminal this long after Redis is back. */
const RECOVERED_WITHIN_MS = 60_000;

/**
 * The webhooks of tasks that finish while Redis is down are refused (503), and the provider does
 * not send them again. With the production RECONCILE_AFTER_MS (five minutes) their jobs would wait
 * that long; instead every process that saw the outage brings the reconcile of every job waiting on
 * the provider forward when Redis is back, and the polls stay within the reads quota.
 */
it('looks at every job in flight promptly once Redis is back from a 10 s outage', async () => {
  const production = { RECONCILE_AFTER_MS: '300000', ORPHAN_AFTER_MS: '300000' };
  const system: ChaosSystem = await startChaosSystem({
    scenario: 'outage-recovery',
    workers: 2,
    // Tasks of ~4 s: all of them end at the provider while Redis is down.
    emulator: { stepMs: 600 },
    appendfsync: 'always',
    commonEnv: production,
    workerEnv: production,
  });
  let passed = false;
  try {
    const submitted = await system.submitJobs({
      count: JOBS,
      body: jobBody(system),
      headers: tenantHeader,
      concurrency: 16,
    });
    const ids = submitted.accepted.map((a) => a.id);
    expect(ids).toHaveLength(JOBS);
    // Every job at the provider, none finished yet.
    const inFlight = async () => {
      const c = await system.countStates(ids);
      return (c.submitted ?? 0) + (c.running ?? 0);
    };
    const deadline = Date.now() + 30_000;
    while ((await inFlight()) < JOBS && Date.now() < deadline) await sleep(100);
    const atStop = await inFlight();

    const stopAt = Date.now();
    const { upAt } = await system.redis.restart('SIGTERM', DOWN_MS);
    const wait = await system.waitAllTerminal(ids, { timeoutMs: 120_000, stallMs: 90_000 });
    const recoveredMs = Date.now() - upAt;
    const left = await system.quiesce(20_000);
    const result = await audit(system, ids);
    const crashes = system.crashes();
    const state = (await (await fetch(`${system.emulatorUrl}/_emulator/state`)).json()) as {
      requests: { at: number; route: string; status: number }[];
      webhooks: { failed: number };
    };
    const readsAfter = state.requests.filter((r) => r.route.startsWith('/tasks') && r.at >= upAt);

    printSummary('outage-recovery', {
      jobs: ids.length,
      in_flight_at_stop: atStop,
      down_s: Math.round((upAt - stopAt) / 100) / 10,
      webhooks_refused: state.webhooks.failed,
      recovered_s: Math.round(recoveredMs / 100) / 10,
      reads_after_restart: readsAfter.length,
      reads_429: readsAfter.filter((r) => r.status === 429).length,
      terminal: result.terminal,
      lost: result.lost.length,
      ledger_diff_micro_usd: result.ledgerDiff,
      crashes: crashes.length,
      took: took(system),
    });
    if (!wait.done) printDetail(`[chaos] outage-recovery: wait ended: ${wait.why}`);

    const failures: string[] = [];
    const check = (ok: boolean, what: string) => ok || failures.push(what);
    check(atStop === JOBS, `${atStop} of ${JOBS} jobs at the provider when Redis stopped`);
    check(state.webhooks.failed > 0, 'no webhook was refused during the outage: the test proves nothing');
    check(wait.done, `not every job terminal: ${wait.why}`);
    check(recoveredMs <= RECOVERED_WITHIN_MS, `terminal ${recoveredMs} ms after the restart`);
    // Within the reads quota (the provider's documented 1,000 a minute): no read was refused.
    check(
      readsAfter.every((r) => r.status !== 429),
      'a read was refused (429) after the restart',
    );
    check((result.byState.completed ?? 0) === JOBS, `${result.byState.completed} of ${JOBS} completed`);
    failures.push(...invariantFailures(result, left, crashes));
    if (failures.length > 0) printDetail(await describeFailures(system, result));
    expect(failures).toEqual([]);
    passed = true;
  } finally {
    await system.close({ keepLogs: !passed });
  }
});
