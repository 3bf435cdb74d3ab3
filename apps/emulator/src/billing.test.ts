import { describe, expect, it } from 'vitest';
import { Bill, chargeMicroUsd } from './billing.js';

describe('chargeMicroUsd', () => {
  it.each([
    [2, 30_000, 60_000],
    [7.52, 60_000, 451_200],
    [0.001, 30_000, 30],
    [0.0005, 1_000, 1], // 0.5 ms rounds to 1 ms first
    [1.001, 1_500, 1_502], // 1501.5 rounds half up
    [1.001, 1_499, 1_500], // 1500.499 rounds down
  ])('%s s at %s µ$/s is %s µ$', (seconds, price, expected) => {
    expect(chargeMicroUsd(seconds, price)).toBe(expected);
  });
});

describe('Bill', () => {
  it('charges a task once and totals by resolution', () => {
    const bill = new Bill({ '720p': 30_000, '1080p': 60_000 });
    bill.charge('a', '720p', 2, '2026-01-01T00:00:00.000Z');
    bill.charge('a', '720p', 2, '2026-01-01T00:00:01.000Z');
    bill.charge('b', '1080p', 0.1, '2026-01-01T00:00:02.000Z');
    bill.charge('c', '1080p', 0.2, '2026-01-01T00:00:03.000Z');
    const snapshot = bill.snapshot();
    expect(snapshot.total_micro_usd).toBe(60_000 + 6_000 + 12_000);
    // Seconds are summed in whole milliseconds: no 0.30000000000000004.
    expect(snapshot.by_resolution['1080p']).toEqual({ tasks: 2, seconds: 0.3, micro_usd: 18_000 });
    expect(snapshot.tasks).toHaveLength(3);
  });
});
