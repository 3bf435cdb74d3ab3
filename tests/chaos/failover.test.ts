import type { RedisNode } from '@recast/core/testing/servers';
import { expect, it } from 'vitest';
import { type Audit, audit, describeFailures, invariantFailures, taskOwner } from './audit.js';
import {
  type ChaosSystem,
  isTerminal,
  printDetail,
  printSummary,
  type SubmitOutcome,
  sleep,
  startChaosSystem,
  took,
} from './harness.js';
import { jobBody, tenantHeader } from './jobs.js';

const WORKERS = 3;
/** Tasks of ~7 s: the kill lands while hundreds of them run at the provider. */
const EMULATOR = { stepMs: 1_000 };
/**
 * The reads quota lifted (the emulator here enforces no limits): these scenarios are about a
 * failover, and recovering hundreds of tasks whose webhooks the failover refused takes more
 * reads than the provider's 1,000 a minute (a poll and a read each, some polled twice), so at the
 * documented budget their recovery takes over a minute, past this harness's "nothing moved for
 * 45 s" rule. The budget's own scenarios: outage-recovery here, and the reads-quota suites.
 */
const WORKER_ENV = { PROVIDER_READS_PER_WINDOW: '0' };

/**
 * Invariant 2 through a Redis failover: Redis as in production (a primary, a replica, three
 * sentinels), every process connected through the sentinels. The primary is SIGKILLed with
 * hundreds of jobs in flight; the sentinels promote the replica; the API and the workers find it
 * by themselves (no restart); the dead node is started again as a replica of the new primary, as
 * its supervisor would. Every job answered 202 must reach a terminal state, no job may have two
 * provider tasks, and the ledger must be the provider's bill.
 */
it('follows a failover: every 202 job terminal, one task per job, ledger = bill', async () => {
  const system = await startChaosSystem({
    scenario: 'failover',
    workers: WORKERS,
    emulator: EMULATOR,
    sentinel: true,
    workerEnv: WORKER_ENV,
  });
  let passed = false;
  try {
    const before = await system.submitJobs({
      count: 500,
      body: jobBody(system),
      headers: tenantHeader,
      ratePerSec: 100,
      concurrency: 16,
    });
    // Hundreds at the provider, none finished yet: the kill cuts through every stage of a job.
    await untilInFlight(system, 250, 60_000);
    const watch = await watchCompletions(
      system,
      before.accepted.map((a) => a.id),
    );
    const failover = await killPrimary(system);
    const after = await submitAfterFailover(system, 50);
    const ids = [...before.accepted, ...after.accepted].map((a) => a.id);

    const outcome = await finish(system, ids, failover.killedAt, watch);
    printSummary('failover', {
      jobs: ids.length,
      refused_before_kill: before.refused.length,
      refused_after_failover: after.refused.length,
      ...outcome.fields,
      promoted_after_ms: failover.promotedAt - failover.killedAt,
      api_connections: failover.connections.api,
      worker_connections: failover.connections.workers,
      took: took(system),
    });
    const failures = [...outcome.failures];
    const check = (ok: boolean, what: string) => ok || failures.push(what);
    check(before.refused.length === 0, `${before.refused.length} submits refused before the kill`);
    check(after.refused.length === 0, `${after.refused.length} submits refused once the API was back`);
    check(
      failover.connections.workers === WORKERS,
      `${failover.connections.workers} of ${WORKERS} workers on the new primary`,
    );
    check(failover.connections.api >= 1, 'the API is not connected to the new primary');
    if (failures.length > 0) printDetail(await describeFailures(system, outcome.result));
    expect(failures).toEqual([]);
    passed = true;
  } finally {
    await system.close({ keepLogs: !passed });
  }
});

/**
 * Acknowledged means replicated: with REDIS_WAIT_REPLICAS=1, a submit while the replica is hung
 * (SIGSTOP) is answered 503, never 202, and the primary then dies before the replica caught up:
 * the replica that takes over may lack whatever was refused, but holds everything answered 202.
 */
it('with REDIS_WAIT_REPLICAS=1: a hung replica turns submits into 503s, and no 202 job is lost when the primary dies', async () => {
  const system = await startChaosSystem({
    scenario: 'failover-wait',
    workers: WORKERS,
    emulator: EMULATOR,
    sentinel: true,
    commonEnv: { REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '500' },
    workerEnv: WORKER_ENV,
  });
  let passed = false;
  try {
    const group = system.sentinel;
    const healthy = await system.submitJobs({
      count: 300,
      body: jobBody(system),
      headers: tenantHeader,
      ratePerSec: 100,
      concurrency: 16,
    });
    await untilInFlight(system, 100, 60_000);
    const primary = (await group.primary())!;
    const replica = group.other(primary);
    const watch = await watchCompletions(
      system,
      healthy.accepted.map((a) => a.id),
    );
    replica.pause();
    let hung: SubmitOutcome;
    try {
      hung = await system.submitJobs({
        count: 60,
        body: (i) => jobBody(system)(1_000 + i),
        headers: tenantHeader,
        concurrency: 16,
      });
    } finally {
      // The primary dies while the replica is still behind, and the replica wakes at once (so the
      // sentinels can promote it): whatever it never received is gone with the primary.
      await primary.stop('SIGKILL');
      replica.resume();
    }
    const killedAt = Date.now();
    const failover = await afterKill(system, primary, killedAt);
    const after = await submitAfterFailover(system, 50);
    const ids = [...healthy.accepted, ...hung.accepted, ...after.accepted].map((a) => a.id);
    const notReplicated = hung.refused.filter(
      (r) => r.status === 503 && r.message.includes('REDIS_NOT_REPLICATED'),
    );

    const outcome = await finish(system, ids, killedAt, watch);
    printSummary('failover-wait', {
      jobs: ids.length,
      refused_healthy: healthy.refused.length,
      hung_submits: hung.accepted.length + hung.refused.length,
      hung_accepted: hung.accepted.length,
      hung_refused_503: notReplicated.length,
      ...outcome.fields,
      promoted_after_ms: failover.promotedAt - killedAt,
      api_connections: failover.connections.api,
      worker_connections: failover.connections.workers,
      took: took(system),
    });
    const failures = [...outcome.failures];
    const check = (ok: boolean, what: string) => ok || failures.push(what);
    check(healthy.refused.length === 0, `${healthy.refused.length} submits refused with a healthy replica`);
    check(
      hung.accepted.length === 0,
      `${hung.accepted.length} submits answered 202 while the replica was hung`,
    );
    check(
      notReplicated.length === hung.refused.length,
      `${hung.refused.length - notReplicated.length} refusals not 503 REDIS_NOT_REPLICATED`,
    );
    check(after.refused.length === 0, `${after.refused.length} submits refused once the API was back`);
    check(
      failover.connections.workers === WORKERS,
      `${failover.connections.workers} of ${WORKERS} workers on the new primary`,
    );
    if (hung.refused.length > 0 && notReplicated.length !== hung.refused.length)
      printDetail(`[chaos] failover-wait: refusals: ${JSON.stringify(hung.refused.slice(0, 3))}`);
    if (failures.length > 0) printDetail(await describeFailures(system, outcome.result));
    expect(failures).toEqual([]);
    passed = true;
  } finally {
    await system.close({ keepLogs: !passed });
  }
});

/** Wait (bounded) until the provider runs at least `count` tasks: the moment to pull the plug. */
async function untilInFlight(system: ChaosSystem, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await system.emulatorState()).in_flight.current < count && Date.now() < deadline) await sleep(100);
}

interface Failover {
  killedAt: number;
  promotedAt: number;
  /** Connections on the primary once settled, by client name: the API's, and the workers' engine connections. */
  connections: { api: number; workers: number };
}

async function killPrimary(system: ChaosSystem): Promise<Failover> {
  const primary = (await system.sentinel.primary())!;
  await primary.stop('SIGKILL');
  const killedAt = Date.now();
  return afterKill(system, primary, killedAt);
}

/**
 * The sentinels promote the replica; the dead node comes back as a replica of the new primary.
 * Then every process must have found the primary by itself: each API and worker process has
 * exactly one engine connection, named, so CLIENT LIST on the primary counts them.
 */
async function afterKill(system: ChaosSystem, old: RedisNode, killedAt: number): Promise<Failover> {
  const group = system.sentinel;
  await group.promoted(old, 90_000);
  const promotedAt = Date.now();
  await group.rejoin(old);
  const primary = await group.settled(90_000);
  const connections = { api: 0, workers: 0 };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const client = primary.client();
    const list = String(await client.call('CLIENT', 'LIST').catch(() => ''));
    client.disconnect();
    connections.api = (list.match(/ name=recast-api /g) ?? []).length;
    connections.workers = (list.match(/ name=recast-worker-producer /g) ?? []).length;
    if (connections.api >= 1 && connections.workers >= WORKERS) break;
    await sleep(250);
  }
  return { killedAt, promotedAt, connections };
}

/** Once the API answers a submit again (503s until it reconnects), `count` more must all be 202. */
async function submitAfterFailover(system: ChaosSystem, count: number): Promise<SubmitOutcome> {
  const probe = jobBody(system);
  const deadline = Date.now() + 60_000;
  let first: SubmitOutcome['accepted'] = [];
  while (first.length === 0 && Date.now() < deadline) {
    first = (await system.submitJobs({ count: 1, body: (i) => probe(5_000 + i), headers: tenantHeader }))
      .accepted;
    if (first.length === 0) await sleep(250);
  }
  const rest = await system.submitJobs({
    count,
    body: (i) => probe(6_000 + i),
    headers: tenantHeader,
    ratePerSec: 50,
    concurrency: 8,
  });
  return { accepted: [...first, ...rest.accepted], refused: rest.refused };
}

/** Wait for every job, audit, and time the completions after the kill. */
async function finish(
  system: ChaosSystem,
  ids: string[],
  killedAt: number,
  watch: CompletionWatch,
): Promise<{ result: Audit; failures: string[]; fields: Record<string, string | number> }> {
  const wait = await system.waitAllTerminal(ids, { timeoutMs: 120_000, stallMs: 45_000 });
  const seen = await watch.stop();
  const left = await system.quiesce(wait.done ? 20_000 : 5_000);
  const result = await audit(system, ids);
  const crashes = system.crashes();
  // Every task the provider holds for one job (any attempt): a job must have one.
  const tasksPerJob = new Map<string, number>();
  for (const task of await system.emulatorTasks()) {
    const owner = taskOwner(task);
    if (owner) tasksPerJob.set(owner.jobId, (tasksPerJob.get(owner.jobId) ?? 0) + 1);
  }
  const twoTasks = [...tasksPerJob.entries()].filter(([, n]) => n > 1).map(([id]) => id);
  // Completions as the harness saw them land in Redis (polled every 200 ms through the sentinels),
  // of the jobs that were in flight at the kill: a job's finished_at is when its worker decided,
  // which may be before a write that then waited out the failover.
  const afterKill = seen.filter((t) => t > killedAt);
  const firstMs = afterKill.length > 0 ? Math.min(...afterKill) - killedAt : -1;
  const lastMs = afterKill.length > 0 ? Math.max(...afterKill) - killedAt : -1;
  if (!wait.done) printDetail(`[chaos] ${system.scenario}: wait ended: ${wait.why}`);
  if (crashes.length > 0)
    printDetail(`[chaos] ${system.scenario}: unexpected exits: ${JSON.stringify(crashes)}`);
  if (twoTasks.length > 0)
    printDetail(`[chaos] ${system.scenario}: jobs with two tasks: ${twoTasks.slice(0, 10).join(',')}`);

  // What the failover made the engine redo (counted from the logs, for the summary).
  const claimsRedone = await system.countInLogs('submit claim lost by Redis');
  const stepsPutBack = await system.countInLogs('not confirmed on enough replicas');
  const moneySwept = await system.countInLogs('settled the money of a job that ended without it');
  const failures: string[] = [];
  const check = (ok: boolean, what: string) => ok || failures.push(what);
  check(result.lost.length === 0, `${result.lost.length} accepted jobs not terminal`);
  check((result.byState.failed ?? 0) === 0, `${result.byState.failed} jobs failed`);
  check(twoTasks.length === 0, `${twoTasks.length} jobs with two provider tasks`);
  check(afterKill.length > 0, 'no job completed after the kill');
  failures.push(...invariantFailures(result, left, crashes));
  return {
    result,
    failures,
    fields: {
      terminal: result.terminal,
      completed: result.byState.completed ?? 0,
      lost: result.lost.length,
      completed_after_kill: afterKill.length,
      kill_to_first_completed_ms: firstMs,
      kill_to_last_completed_ms: lastMs,
      jobs_with_two_tasks: twoTasks.length,
      claims_redone: claimsRedone,
      not_replicated_answers: stepsPutBack,
      money_swept: moneySwept,
      double_submitted: result.doubleSubmitted.length,
      per_job_mismatch: result.perJobMismatches.length,
      ledger_diff_micro_usd: result.ledgerDiff,
      report_diff_micro_usd: result.reportDiff,
      reservations_left: left.reservations,
      in_flight_left: left.in_flight_slots,
      crashes: crashes.length,
    },
  };
}

interface CompletionWatch {
  /** When each job not yet terminal at the start was first seen terminal (epoch ms). */
  stop(): Promise<number[]>;
}

/** From now on, note when each of `ids` is first seen terminal, polling every 200 ms. */
async function watchCompletions(system: ChaosSystem, ids: string[]): Promise<CompletionWatch> {
  const open = new Set(
    [...(await system.readJobs(ids)).values()].filter((r) => !isTerminal(r.state)).map((r) => r.id),
  );
  const seen: number[] = [];
  let stopped = false;
  const polling = (async () => {
    while (!stopped && open.size > 0) {
      const rows = await system.readJobs([...open]).catch(() => undefined);
      const at = Date.now();
      for (const row of rows?.values() ?? []) {
        if (!isTerminal(row.state)) continue;
        open.delete(row.id);
        seen.push(at);
      }
      await sleep(200);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await polling;
      return seen;
    },
  };
}
