import { expect, it } from 'vitest';
import { audit, describeFailures, invariantFailures } from './audit.js';
import { type ChaosSystem, printDetail, printSummary, sleep, startChaosSystem, took } from './harness.js';
import { jobBody, tenantHeader } from './jobs.js';

const JOBS = 300;
const DOWN_MS = 2_000;
/** After Redis is back, clients get this long to reconnect before a refusal counts against them. */
const RECONNECT_GRACE_MS = 5_000;

/**
 * Invariant 2 through Redis restarts: jobs flow in while the private Redis is stopped twice and
 * started again on the same port and data directory, once gracefully (SIGTERM: the AOF is flushed)
 * and once as a crash (SIGKILL, with `appendfsync always` so every acknowledged write is on disk).
 * The API, the workers and the provider's webhooks live through it: processes reconnect by
 * themselves, every job answered 2xx reaches a terminal state, and the ledger is the bill. A submit
 * while Redis is down may be refused (503): that is no promise, so it is counted, not held against.
 */
it('survives a graceful and a crash restart of Redis without losing an accepted job', async () => {
  const system: ChaosSystem = await startChaosSystem({
    scenario: 'redis-restart',
    workers: 3,
    // Tasks of ~2 s: many finish while Redis is down, so their webhooks are refused (5xx).
    emulator: { stepMs: 300 },
    appendfsync: 'always',
  });
  let passed = false;
  try {
    const outages: { signal: string; downAt: number; upAt: number }[] = [];
    const submitting = system.submitJobs({
      count: JOBS,
      body: jobBody(system),
      headers: tenantHeader,
      ratePerSec: 12,
      concurrency: 16,
    });
    const restarting = (async () => {
      for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
        await sleep(7_000);
        const stopAt = Date.now();
        const { upAt } = await system.redis.restart(signal, DOWN_MS);
        outages.push({ signal, downAt: stopAt, upAt });
      }
    })();
    const [submitted] = await Promise.all([submitting, restarting]);
    const ids = submitted.accepted.map((a) => a.id);

    const wait = await system.waitAllTerminal(ids, { timeoutMs: 90_000, stallMs: 40_000 });
    const left = await system.quiesce(wait.done ? 20_000 : 5_000);
    const result = await audit(system, ids);
    const crashes = system.crashes();
    // A refusal is fine while Redis is down and shortly after; at any other time it is a bug.
    const outOfOutage = submitted.refused.filter(
      (r) => !outages.some((o) => r.at >= o.downAt - 1_000 && r.at <= o.upAt + RECONNECT_GRACE_MS),
    );

    printSummary('redis-restart', {
      jobs: ids.length,
      refused_during_outage: submitted.refused.length - outOfOutage.length,
      refused_otherwise: outOfOutage.length,
      terminal: result.terminal,
      completed: result.byState.completed ?? 0,
      failed: result.byState.failed ?? 0,
      lost: result.lost.length,
      restarts: outages.map((o) => `${o.signal}:${Math.round((o.upAt - o.downAt) / 100) / 10}s`).join(','),
      double_submitted: result.doubleSubmitted.length,
      per_job_mismatch: result.perJobMismatches.length,
      ledger_diff_micro_usd: result.ledgerDiff,
      report_diff_micro_usd: result.reportDiff,
      webhooks_failed: result.emulator.webhooks.failed,
      reservations_left: left.reservations,
      in_flight_left: left.in_flight_slots,
      crashes: crashes.length,
      took: took(system),
    });
    if (!wait.done) printDetail(`[chaos] redis-restart: wait ended: ${wait.why}`);
    if (crashes.length > 0)
      printDetail(`[chaos] redis-restart: unexpected exits: ${JSON.stringify(crashes)}`);
    if (outOfOutage.length > 0)
      printDetail(
        `[chaos] redis-restart: refused outside outages: ${JSON.stringify(outOfOutage.slice(0, 5))}`,
      );

    const failures: string[] = [];
    const check = (ok: boolean, what: string) => ok || failures.push(what);
    check(outages.length === 2, `${outages.length} restarts, not 2`);
    check(outOfOutage.length === 0, `${outOfOutage.length} submits refused while Redis was up`);
    check(result.lost.length === 0, `${result.lost.length} accepted jobs not terminal`);
    check((result.byState.failed ?? 0) === 0, `${result.byState.failed} jobs failed with no fault injected`);
    failures.push(...invariantFailures(result, left, crashes));
    if (failures.length > 0) printDetail(await describeFailures(system, result));
    expect(failures).toEqual([]);
    passed = true;
  } finally {
    await system.close({ keepLogs: !passed });
  }
});
