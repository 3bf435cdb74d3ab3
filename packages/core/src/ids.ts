import { monotonicFactory } from 'ulid';

// Monotonic so ids minted in the same millisecond still sort in creation order.
const nextUlid = monotonicFactory();

/** Job ids sort by creation time: `job_` + a ULID. */
export function newJobId(now = Date.now()): string {
  return `job_${nextUlid(now)}`;
}

export const JOB_ID_PATTERN = /^job_[0-9A-HJKMNP-TV-Z]{26}$/;

export function isJobId(value: string): boolean {
  return JOB_ID_PATTERN.test(value);
}
