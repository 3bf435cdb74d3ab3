import { createKeys } from '@recast/core/infra';
import { expect, it } from 'vitest';
import { taskOwner } from './audit.js';
import {
  type ChaosSystem,
  isTerminal,
  printDetail,
  printSummary,
  sleep,
  startChaosSystem,
  took,
} from './harness.js';
import { jobBody, tenantHeader } from './jobs.js';

const FIRST_WAVE = 300;
const OUTAGE_WAVE = 200;
const WORKERS = 3;
const ARCHIVER_KILLS = 6;
const OUTAGE_MS = 30_000;
/** Finished jobs leave Redis this long after they are archived (the test waits for it). */
const RETENTION_MS = 5_000;

/**
 * The durable books under faults (invariants 8 and 9): jobs flow while the worker holding the
 * archiving turn is SIGKILLed in the middle of a pass, between its write to PostgreSQL and its
 * mark in Redis (ARCHIVE_FAULT_PAUSE_MS holds every pass there), six times; then PostgreSQL is
 * stopped for 30 s while a second wave is submitted and runs. Afterwards: every job accepted is
 * terminal and in PostgreSQL exactly once, every charge is a line item exactly once (the daily
 * sums agree with the lines), the line items equal the provider's bill job by job, the outboxes
 * are empty, and the finished jobs and charges have left Redis.
 */
it('archives every job and charge exactly once through archiver crashes and a 30 s PostgreSQL outage', async () => {
  const system: ChaosSystem = await startChaosSystem({
    scenario: 'archive-faults',
    workers: WORKERS,
    emulator: { stepMs: 150 },
    workerEnv: {
      ARCHIVE_INTERVAL_MS: '200',
      ARCHIVE_FAULT_PAUSE_MS: '1500',
      REDIS_JOB_RETENTION_MS: String(RETENTION_MS),
    },
  });
  let passed = false;
  try {
    if (!system.postgres.stoppable) throw new Error('this scenario needs PostgreSQL server binaries');
    const keys = createKeys(system.prefix);
    const first = system.submitJobs({
      count: FIRST_WAVE,
      body: jobBody(system),
      headers: tenantHeader,
      ratePerSec: 20,
      concurrency: 8,
    });
    // Kill whoever holds the archiving turn: its passes sit between write and mark most of the time.
    let archiverKills = 0;
    const killing = (async () => {
      await sleep(2_000);
      for (let tries = 0; archiverKills < ARCHIVER_KILLS && tries < 200; tries++) {
        await sleep(1_000 + Math.random() * 1_000);
        const holder = await system.client.get(keys.archiveLock());
        const pid = Number(holder?.split(':')[0]);
        if (Number.isInteger(pid) && (await system.killWorkerByPid(pid))) archiverKills++;
      }
    })();
    const [wave1] = await Promise.all([first, killing]);

    // PostgreSQL down for 30 s while a second wave goes in and runs: the live path does not care.
    await system.postgres.stopServer();
    const outageStart = Date.now();
    const wave2 = await system.submitJobs({
      count: OUTAGE_WAVE,
      body: jobBody(system),
      headers: tenantHeader,
      ratePerSec: 25,
      concurrency: 8,
    });
    const ready = (await (await fetch(`${system.apiUrl}/readyz`)).json()) as {
      status: string;
      database: string;
    };
    let backlogDuringOutage = 0;
    let completedDuringOutage = 0;
    const wave2Ids = wave2.accepted.map((a) => a.id);
    while (Date.now() - outageStart < OUTAGE_MS) {
      await sleep(1_000);
      const stats = (await (await fetch(`${system.apiUrl}/v1/stats`)).json()) as {
        archive: { backlog: { jobs: number; charges: number } };
      };
      backlogDuringOutage = Math.max(backlogDuringOutage, stats.archive.backlog.jobs);
      const states = await system.countStates(wave2Ids);
      completedDuringOutage = states.completed ?? 0;
    }
    await system.postgres.startServer();

    const ids = [...wave1.accepted, ...wave2.accepted].map((a) => a.id);
    const wait = await system.waitAllTerminal(ids, { timeoutMs: 120_000, stallMs: 45_000 });
    // The backlog drains, then what was archived leaves Redis after the retention.
    let backlog = { jobs: -1, charges: -1, batches: -1 };
    let inRedis = -1;
    let chargesInRedis = -1;
    const drainStart = Date.now();
    for (; Date.now() - drainStart < 90_000; await sleep(1_000)) {
      const [j, c, b] = await Promise.all([
        system.client.zcard(keys.outboxJobs()),
        system.client.zcard(keys.outboxCharges()),
        system.client.zcard(keys.outboxBatches()),
      ]);
      backlog = { jobs: j, charges: c, batches: b };
      const pipeline = system.client.pipeline();
      for (const id of ids) pipeline.exists(keys.job(id));
      inRedis = ((await pipeline.exec()) ?? []).filter(([, n]) => n === 1).length;
      chargesInRedis = await system.client.hlen(keys.ledgerCharged());
      if (j + c + b === 0 && inRedis === 0 && chargesInRedis === 0) break;
    }
    const drainedIn = Math.round((Date.now() - drainStart) / 1000);

    // The books in PostgreSQL against the provider's bill.
    const jobs = await system.postgres.query<{ id: string; state: string }>(
      'SELECT id, state FROM recast_jobs WHERE id = ANY($1)',
      [ids],
    );
    const charges = await system.postgres.query<{ charge_id: string; job_id: string; micro_usd: string }>(
      'SELECT charge_id, job_id, micro_usd FROM recast_charges',
    );
    const [days] = await system.postgres.query<{ micro_usd: string | null; runs: string | null }>(
      'SELECT sum(micro_usd) AS micro_usd, sum(runs + duplicates) AS runs FROM recast_cost_days',
    );
    const emulator = await system.emulatorState();
    const tasks = await system.emulatorTasks();
    const billOf = new Map<string, number>();
    const billed = new Map(emulator.bill.tasks.map((line) => [line.task_id, line.micro_usd]));
    for (const task of tasks) {
      const owner = taskOwner(task);
      if (owner) billOf.set(owner.jobId, (billOf.get(owner.jobId) ?? 0) + (billed.get(task.id) ?? 0));
    }
    const chargedOf = new Map<string, number>();
    for (const c of charges) chargedOf.set(c.job_id, (chargedOf.get(c.job_id) ?? 0) + Number(c.micro_usd));
    const perJobMismatch = ids.filter((id) => (chargedOf.get(id) ?? 0) !== (billOf.get(id) ?? 0));
    const linesTotal = charges.reduce((sum, c) => sum + Number(c.micro_usd), 0);
    const billTotal = emulator.bill.tasks.reduce((sum, line) => sum + line.micro_usd, 0);
    const notTerminal = jobs.filter((j) => !isTerminal(j.state)).length;

    printSummary('archive-faults', {
      jobs: ids.length,
      refused: wave1.refused.length + wave2.refused.length,
      archiver_kills: archiverKills,
      outage_s: OUTAGE_MS / 1000,
      completed_during_outage: completedDuringOutage,
      backlog_jobs_peak: backlogDuringOutage,
      ready_during_outage: `${ready.status}/${ready.database === 'ok' ? 'ok' : 'down'}`,
      archived_jobs: jobs.length,
      not_terminal: notTerminal,
      line_items: charges.length,
      per_job_mismatch: perJobMismatch.length,
      lines_micro_usd: linesTotal,
      day_sums_micro_usd: Number(days?.micro_usd ?? 0),
      bill_micro_usd: billTotal,
      backlog_left: backlog.jobs + backlog.charges + backlog.batches,
      jobs_left_in_redis: inRedis,
      charges_left_in_redis: chargesInRedis,
      drained_s: drainedIn,
      took: took(system),
    });
    if (!wait.done) printDetail(`[chaos] archive-faults: wait ended: ${wait.why}`);

    const failures: string[] = [];
    const check = (ok: boolean, what: string) => ok || failures.push(what);
    check(wave1.refused.length + wave2.refused.length === 0, 'submits refused');
    check(archiverKills === ARCHIVER_KILLS, `only ${archiverKills} archiver kills`);
    check(
      ready.status === 'ready' && ready.database !== 'ok',
      `readyz during the outage: ${JSON.stringify(ready)}`,
    );
    check(completedDuringOutage > 0, 'no job completed while PostgreSQL was down');
    check(backlogDuringOutage > 0, 'the backlog did not grow during the outage');
    check(jobs.length === ids.length, `${jobs.length} of ${ids.length} jobs in PostgreSQL`);
    check(notTerminal === 0, `${notTerminal} archived jobs not terminal`);
    check(
      perJobMismatch.length === 0,
      `line items differ from the bill for ${perJobMismatch.slice(0, 5).join(',')}`,
    );
    check(linesTotal === billTotal, `line items ${linesTotal} vs bill ${billTotal}`);
    check(
      Number(days?.micro_usd ?? 0) === linesTotal,
      `daily sums ${days?.micro_usd} vs lines ${linesTotal}`,
    );
    check(
      Number(days?.runs ?? 0) === charges.length,
      `daily counts ${days?.runs} vs ${charges.length} lines`,
    );
    check(backlog.jobs + backlog.charges + backlog.batches === 0, `backlog left ${JSON.stringify(backlog)}`);
    check(inRedis === 0, `${inRedis} finished jobs still in Redis`);
    check(chargesInRedis === 0, `${chargesInRedis} charges still in Redis`);
    expect(failures).toEqual([]);
    passed = true;
  } finally {
    await system.close({ keepLogs: !passed });
  }
});
