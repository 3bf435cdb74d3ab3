/**
 * Budget ledger throughput: reserve + charge pairs per second against two limited scopes (global
 * and tenant daily limits, never reached), next to plain INCRBY on the same Redis with the same
 * concurrency in the same run. A pair is at least three round trips (the reserve script, then the
 * settle's HGET and script), so INCRBY x2 and x3 in sequence are printed as well. Each round runs
 * on fresh keys and is checked afterwards: nothing left reserved, spent = pairs x amount.
 */
import { BUDGET_WINDOWS } from '@recast/core/contract';
import { createKeys } from '@recast/core/infra';
import { type BudgetScope, Budgets, Ledger, utcDay } from '@recast/core/money';
import { benchConnection, benchRedis, fmt, measure, report } from './lib.js';

const TOTAL = Number(process.env.BENCH_RESERVATIONS_TOTAL ?? 20_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const ROUNDS = 3;
const AMOUNT = 150_000; // micro-dollars: 5 s of 720p at $0.03/s
const NEVER_REACHED = 1_000_000_000_000_000; // $1e9 a day
const TENANT = 'acme';
const SCOPES: BudgetScope[] = ['global', `tenant:${TENANT}`];

export async function benchReservations(): Promise<{ ratio: number }> {
  const redis = await benchRedis();
  const prefix = `bench-${Date.now().toString(36)}`;
  const connection = benchConnection(redis.url);
  // One instant for the whole run: every pair lands in the same day/month periods.
  const at = new Date();
  const day = utcDay(at);

  const pairs = async (name: string, total: number) => {
    const keys = createKeys(`${prefix}-${name}`);
    const ledger = new Ledger(connection, keys);
    const budgets = new Budgets(connection, keys);
    for (const scope of SCOPES) await budgets.setLimit(scope, 'daily', NEVER_REACHED);
    const rate = await measure(total, CONCURRENCY, async (i) => {
      const jobId = `job-${i}`;
      const reserved = await ledger.reserve({ jobId, tenant: TENANT }, AMOUNT, at);
      if (!reserved.ok) throw new Error(`reservation refused by ${reserved.scope}|${reserved.window}`);
      if (reserved.held) throw new Error(`${jobId} already held a reservation`);
      const charged = await ledger.charge(
        { jobId, tenant: TENANT, day, resolution: '720p', ms: 5000, microUsd: AMOUNT, priceVersion: 'bench' },
        at,
      );
      if (!charged) throw new Error(`${jobId} was charged already`);
    });
    // Correctness: every scope x window holds nothing reserved and exactly what was charged.
    for (const scope of SCOPES) {
      for (const window of BUDGET_WINDOWS) {
        const usage = await budgets.usage(scope, window, at);
        if (usage.reserved_micro_usd !== 0 || usage.spent_micro_usd !== total * AMOUNT) {
          throw new Error(
            `${name}: ${scope}|${window} shows reserved ${usage.reserved_micro_usd}, spent ${usage.spent_micro_usd}; expected 0 and ${total * AMOUNT}`,
          );
        }
      }
    }
    const left = await connection.hlen(keys.reservations());
    if (left !== 0) throw new Error(`${name}: ${left} reservations left after settling`);
    return rate;
  };

  const incrKey = `${prefix}:incrby`;
  const incrby = (times: number) =>
    measure(TOTAL, CONCURRENCY, async () => {
      for (let k = 0; k < times; k++) await connection.incrby(incrKey, 1);
    });

  try {
    // Warm both paths (JIT, connection, Lua script cache), then alternate rounds and keep the best.
    await incrby(1);
    await pairs('warm', 2000);
    const best = { x1: 0, x2: 0, x3: 0, pairs: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      best.x1 = Math.max(best.x1, (await incrby(1)).perSecond);
      best.x2 = Math.max(best.x2, (await incrby(2)).perSecond);
      best.x3 = Math.max(best.x3, (await incrby(3)).perSecond);
      best.pairs = Math.max(best.pairs, (await pairs(`round${round}`, TOTAL)).perSecond);
    }
    const ratio = best.pairs / best.x1;

    report('reservations: Ledger reserve + charge pairs vs plain INCRBY', [
      ['pairs per round', `${fmt(TOTAL)} at concurrency ${CONCURRENCY}, best of ${ROUNDS}`],
      [
        'budgets checked per reserve',
        `global|daily + tenant:${TENANT}|daily limits; 6 usage hashes (2 scopes x 3 windows) per pair`,
      ],
      ['INCRBY (1 round trip)', `${fmt(best.x1)} ops/s`],
      ['INCRBY x2 in sequence', `${fmt(best.x2)} sequences/s`],
      ['INCRBY x3 in sequence', `${fmt(best.x3)} sequences/s (a pair is 3 round trips)`],
      ['reserve + charge', `${fmt(best.pairs)} pairs/s`],
      ['ratio: pairs/s / INCRBY ops/s', fmt(ratio, 3)],
      ['pairs/s / INCRBY x2 sequences/s', fmt(best.pairs / best.x2, 3)],
      ['pairs/s / INCRBY x3 sequences/s', fmt(best.pairs / best.x3, 3)],
      [
        'checked after every round',
        `reserved 0, spent ${fmt(TOTAL * AMOUNT)} micro-USD in all 6 usage hashes, no reservation left`,
      ],
    ]);
    return { ratio };
  } finally {
    await connection.quit();
    await redis.stop();
  }
}
