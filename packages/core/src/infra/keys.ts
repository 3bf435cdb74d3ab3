/**
 * Every Redis key Recast owns, built in one place. Keys a Lua script touches together share
 * one hash tag (`{...}`) so the scripts keep working on Redis Cluster:
 * - BullMQ's own keys live under `bullPrefix` (itself a hash tag, e.g. `{recast}`), and job records
 *   share that tag, so a record and its BullMQ job are written in one MULTI (both or neither);
 * - the money ledger's keys (costs, budget limits, usage, reservations) share `{ledger}`;
 * - the provider limits (request rate, in-flight tasks, 429 pause) share `{limits}`;
 * - the fair-share queues and the budget parking lot live with the job records under the queue's
 *   tag, so a job's state and its place in line change in one MULTI.
 */
export interface Keys {
  readonly prefix: string;
  /** BullMQ `prefix` option, e.g. `{recast}`. */
  readonly bullPrefix: string;
  job(jobId: string): string;
  idempotency(tenant: string, key: string): string;
  ledgerCharged(): string;
  /** Provider task id -> the charge that billed it: a task is charged once. */
  ledgerChargedTasks(): string;
  /**
   * The archive outboxes (history/archiver.ts): what a Lua step made final, waiting to be written
   * to PostgreSQL (zsets id -> when queued, ms), and what was written, by when (for eviction).
   * Jobs and batches live under the queue's tag (the transition script writes them), charges
   * under {ledger} (the charge script writes them).
   */
  outboxJobs(): string;
  archivedJobs(): string;
  outboxBatches(): string;
  archivedBatches(): string;
  outboxCharges(): string;
  archivedCharges(): string;
  /** One archive pass at a time across the deployment. */
  archiveLock(): string;
  /** The last audit of the books against the provider (hash: at, from, to, unaccounted_micro_usd, ...). */
  auditLast(): string;
  ledgerDay(day: string): string;
  ledgerDays(): string;
  /** A batch's billed totals by resolution (`<resolution>|ms|count|micro_usd` counters). */
  ledgerBatch(batchId: string): string;
  /** A day's billed totals by resolution, of one tenant or of everyone (same counters). */
  ledgerDayTotals(day: string, tenant?: string): string;
  budgetLimits(): string;
  budgetUsage(scope: string, period: string): string;
  reservations(): string;
  limitsInFlight(): string;
  limitsRate(): string;
  limitsPause(): string;
  /** The submit pace (admit-4.lua): when the next submit is due, ms. */
  limitsPace(): string;
  /** Provider processing time per output second, observed on completed tasks (forecast/processing.ts). */
  processingTimes(): string;
  /** A quota other than submits (task reads, uploads): its request log and its pause after a 429. */
  limitsQuota(group: string): string;
  limitsQuotaPause(group: string): string;
  /** Prefix of the per-tenant fair-share lists (the tenant id follows). */
  fairPrefix(): string;
  parkedPrefix(): string;
  parkedSignatures(): string;
  /** Set by anything that frees money or raises a limit; the unparker picks it up. */
  unparkWake(): string;
  tenantWeights(): string;
  /** Jobs waiting on the provider, by when to look at them next (see transition-2.lua). */
  reconcile(): string;
  /** A batch's record; its per-state counters (`:counts`) and its jobs by line (`:jobs`). */
  batch(batchId: string): string;
  batchCounts(batchId: string): string;
  batchJobs(batchId: string): string;
  /** A tenant's batches (ids sort by creation). */
  tenantBatches(tenant: string): string;
  /** Batches being uploaded (invisible), and committed batches whose jobs are still being lined up. */
  batchesStaging(): string;
  batchesLining(): string;
  /** Committed batches with a completion_window, by when it closes (ms; removed once swept). */
  batchesExpiring(): string;
  /** API keys: id -> record (JSON), and a key's SHA-256 -> its id. */
  apiKeys(): string;
  apiKeyHash(sha256: string): string;
  /** Job listings: every job, a tenant's, and either by state (zsets of ids, lex = creation order). */
  jobIndex(tenant?: string, state?: string): string;
  /** A tenant's event stream (job and batch state changes), trimmed by age. */
  events(tenant: string): string;
  /** A tenant's uploaded file by content hash: the provider's uri (the upload dedupe index). */
  uploadedFile(tenant: string, sha256: string): string;
  /** Runs whose output duration was checked against the bill, and the mismatches of a day. */
  billingChecked(): string;
  billingMismatchDay(day: string): string;
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
    ledgerChargedTasks: () => `${prefix}:{ledger}:charged-tasks`,
    // Derived in Lua from a job key too (transition-2.lua, annotate-1.lua): keep them in step.
    outboxJobs: () => `{${prefix}}:outbox:jobs`,
    archivedJobs: () => `{${prefix}}:archived:jobs`,
    outboxBatches: () => `{${prefix}}:outbox:batches`,
    archivedBatches: () => `{${prefix}}:archived:batches`,
    outboxCharges: () => `${prefix}:{ledger}:outbox:charges`,
    archivedCharges: () => `${prefix}:{ledger}:archived:charges`,
    archiveLock: () => `${prefix}:archive-lock`,
    auditLast: () => `${prefix}:audit:last`,
    ledgerDay: (day) => `${prefix}:{ledger}:day:${day}`,
    ledgerDays: () => `${prefix}:{ledger}:days`,
    ledgerBatch: (batchId) => `${prefix}:{ledger}:batch:${batchId}`,
    ledgerDayTotals: (day, tenant) =>
      `${prefix}:{ledger}:day-totals:${day}${tenant === undefined ? '' : `:${tenant}`}`,
    budgetLimits: () => `${prefix}:{ledger}:budget:limits`,
    budgetUsage: (scope, period) => `${prefix}:{ledger}:budget:usage:${scope}:${period}`,
    reservations: () => `${prefix}:{ledger}:reservations`,
    limitsInFlight: () => `${prefix}:{limits}:in-flight`,
    limitsRate: () => `${prefix}:{limits}:rate`,
    limitsPause: () => `${prefix}:{limits}:pause-until`,
    limitsPace: () => `${prefix}:{limits}:pace`,
    processingTimes: () => `${prefix}:processing`,
    limitsQuota: (group) => `${prefix}:{limits}:quota:${group}`,
    limitsQuotaPause: (group) => `${prefix}:{limits}:quota:${group}:pause-until`,
    fairPrefix: () => `{${prefix}}:fair:`,
    parkedPrefix: () => `{${prefix}}:parked:`,
    parkedSignatures: () => `{${prefix}}:parked-signatures`,
    unparkWake: () => `{${prefix}}:unpark-wake`,
    tenantWeights: () => `{${prefix}}:fair:weights`,
    reconcile: () => `{${prefix}}:reconcile`,
    batch: (batchId) => `{${prefix}}:batch:${batchId}`,
    batchCounts: (batchId) => `{${prefix}}:batch:${batchId}:counts`,
    batchJobs: (batchId) => `{${prefix}}:batch:${batchId}:jobs`,
    tenantBatches: (tenant) => `{${prefix}}:batches:${tenant}`,
    batchesStaging: () => `{${prefix}}:batches-staging`,
    batchesLining: () => `{${prefix}}:batches-lining`,
    batchesExpiring: () => `{${prefix}}:batches-expiring`,
    apiKeys: () => `${prefix}:apikeys`,
    apiKeyHash: (sha256) => `${prefix}:apikey:${sha256}`,
    // Derived in Lua from a job key too (transition-2.lua): keep the two spellings in step.
    jobIndex: (tenant, state) =>
      `{${prefix}}:idx:jobs${tenant === undefined ? '' : `:t:${tenant}`}${state === undefined ? '' : `:s:${state}`}`,
    events: (tenant) => `{${prefix}}:events:${tenant}`,
    uploadedFile: (tenant, sha256) => `${prefix}:upload:${tenant}:${sha256}`,
    billingChecked: () => `${prefix}:{ledger}:billing-checked`,
    billingMismatchDay: (day) => `${prefix}:{ledger}:billing-mismatch:day:${day}`,
  };
}
