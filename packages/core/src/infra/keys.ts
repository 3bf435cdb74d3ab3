/**
 * Every Redis key Recast owns, built in one place. Keys a Lua script touches together share
 * one hash tag (`{...}`) so the scripts keep working on Redis Cluster:
 * - BullMQ's own keys live under `bullPrefix` (itself a hash tag, e.g. `{recast}`), and job records
 *   share that tag, so a record and its BullMQ job are written in one MULTI (both or neither);
 * - the cost ledger's keys share `{ledger}`.
 */
export interface Keys {
  readonly prefix: string;
  /** BullMQ `prefix` option, e.g. `{recast}`. */
  readonly bullPrefix: string;
  job(jobId: string): string;
  idempotency(tenant: string, key: string): string;
  ledgerCharged(): string;
  ledgerDay(day: string): string;
  ledgerDays(): string;
}

export function createKeys(prefix: string): Keys {
  if (!/^[A-Za-z0-9_.:-]+$/.test(prefix)) {
    throw new Error(`invalid key prefix "${prefix}": letters, digits, _ . : - only`);
  }
  return {
    prefix,
    bullPrefix: `{${prefix}}`,
    job: (jobId) => `{${prefix}}:job:${jobId}`,
    idempotency: (tenant, key) => `${prefix}:idem:${tenant}:${key}`,
    ledgerCharged: () => `${prefix}:{ledger}:charged`,
    ledgerDay: (day) => `${prefix}:{ledger}:day:${day}`,
    ledgerDays: () => `${prefix}:{ledger}:days`,
  };
}
