import { describe, expect, it } from 'vitest';
import { nextLookMs } from './overdue.js';

describe('nextLookMs', () => {
  it('looks again as long as the task is late already, within the floor and the ceiling', () => {
    const now = 1_000_000;
    expect(nextLookMs({ overdue_ms: now - 100 }, now, 1_000, 300_000)).toBe(1_000);
    expect(nextLookMs({ overdue_ms: now - 45_000 }, now, 1_000, 300_000)).toBe(45_000);
    expect(nextLookMs({ overdue_ms: now - 3_600_000 }, now, 1_000, 300_000)).toBe(300_000);
    // No expectation recorded (a task submitted before there were any): the flat delay.
    expect(nextLookMs({}, now, 1_000, 300_000)).toBe(300_000);
  });
});
