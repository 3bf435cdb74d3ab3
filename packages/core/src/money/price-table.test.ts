import { describe, expect, it } from 'vitest';
import {
  costMicroUsd,
  costOf,
  DEFAULT_PRICE_TABLE,
  microUsdToUsd,
  parsePriceTable,
  secondsToMs,
} from './price-table.js';

describe('price table', () => {
  it('prices 720p at $0.03/s and 1080p at $0.06/s in integer micro-dollars', () => {
    expect(costOf(DEFAULT_PRICE_TABLE, '720p', 5)).toEqual({ ms: 5000, microUsd: 150_000 });
    expect(costOf(DEFAULT_PRICE_TABLE, '1080p', 5)).toEqual({ ms: 5000, microUsd: 300_000 });
    expect(costOf(DEFAULT_PRICE_TABLE, '720p', 7.52)).toEqual({ ms: 7520, microUsd: 225_600 });
  });

  it('turns float seconds into exact milliseconds', () => {
    expect(secondsToMs(7.52)).toBe(7520);
    expect(secondsToMs(0.1 + 0.2)).toBe(300);
    expect(() => secondsToMs(-1)).toThrow();
    expect(() => secondsToMs(Number.NaN)).toThrow();
  });

  it('rounds half up to the micro-dollar and never loses precision', () => {
    expect(costMicroUsd(1, 1500)).toBe(2);
    expect(costMicroUsd(1, 1499)).toBe(1);
    expect(costMicroUsd(3_600_000_000, 60_000)).toBe(216_000_000_000);
  });

  it('formats micro-dollars as exact decimal dollars', () => {
    expect(microUsdToUsd(225_600)).toBe('0.225600');
    expect(microUsdToUsd(12_000_000)).toBe('12.000000');
    expect(microUsdToUsd(0)).toBe('0.000000');
  });

  it('parses a configured table and names what is wrong', () => {
    expect(parsePriceTable('{"version":"v2","micro_usd_per_second":{"720p":1,"1080p":2}}').version).toBe(
      'v2',
    );
    expect(() => parsePriceTable('{')).toThrow(/not valid JSON/);
    expect(() => parsePriceTable('{"version":"v2","micro_usd_per_second":{"720p":0.5,"1080p":2}}')).toThrow(
      /720p/,
    );
  });
});
