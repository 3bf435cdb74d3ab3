import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';

// ulid draws one crypto random byte per character, a syscall-sized cost on the submit hot path;
// hand it bytes from a refilled pool instead. Ids need to be unique and sortable, not secret
// (webhooks are authenticated by HMAC tokens, reads by tenant).
const pool = Buffer.alloc(4096);
let offset = pool.length;
function pooledRandom(): number {
  if (offset >= pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  return pool[offset++]! / 256;
}

// Monotonic so ids minted in the same millisecond still sort in creation order.
const nextUlid = monotonicFactory(pooledRandom);

/** Job ids sort by creation time: `job_` + a ULID. */
export function newJobId(now = Date.now()): string {
  return `job_${nextUlid(now)}`;
}

export const JOB_ID_PATTERN = /^job_[0-9A-HJKMNP-TV-Z]{26}$/;

export function isJobId(value: string): boolean {
  return JOB_ID_PATTERN.test(value);
}

/** Batch ids sort by creation time too: `bat_` + a ULID. */
export function newBatchId(now = Date.now()): string {
  return `bat_${nextUlid(now)}`;
}

export const BATCH_ID_PATTERN = /^bat_[0-9A-HJKMNP-TV-Z]{26}$/;

export function isBatchId(value: string): boolean {
  return BATCH_ID_PATTERN.test(value);
}
