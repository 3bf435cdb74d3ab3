import { describe, expect, it } from 'vitest';
import { RateLimitBackoff } from './rate-limit.js';

describe('RateLimitBackoff (a 429 that names no wait)', () => {
  it('doubles its ceiling with each 429 in a row, up to the cap, and starts over after a success', () => {
    const top = new RateLimitBackoff(1_000, 8_000, () => 1);
    expect([top.next(), top.next(), top.next(), top.next(), top.next()]).toEqual([
      1_000, 2_000, 4_000, 8_000, 8_000,
    ]);
    top.reset();
    expect(top.next()).toBe(1_000);
  });

  it('draws each wait between half the ceiling and all of it (full jitter above a floor)', () => {
    const low = new RateLimitBackoff(1_000, 60_000, () => 0);
    expect([low.next(), low.next(), low.next()]).toEqual([500, 1_000, 2_000]);
    const spread = new RateLimitBackoff(1_000);
    const waits = Array.from({ length: 200 }, () => {
      spread.reset();
      return spread.next();
    });
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(500);
    expect(Math.max(...waits)).toBeLessThanOrEqual(1_000);
    expect(new Set(waits).size).toBeGreaterThan(10);
  });
});
