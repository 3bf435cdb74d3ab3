import { describe, expect, it } from 'vitest';
import { duration, type Eta, etaText } from './eta.js';

const NOW = Date.parse('2026-12-04T12:00:00Z');
const basis: Eta['basis'] = {
  jobs_ahead: 10,
  output_seconds_ahead: 20,
  submits_per_minute: 100,
  max_in_flight: 4,
  ms_per_output_second: 900,
  processing_source: 'observed',
  tasks_observed: 12,
};

describe('etaText', () => {
  it('says when, and in how long', () => {
    expect(etaText({ finish_at: '2026-12-04T12:03:12Z', blocked_by: null, basis }, NOW)).toBe(
      'ETA 12:03:12 UTC (in 3m 12s)',
    );
    expect(
      etaText(
        {
          finish_at: '2026-12-06T15:00:00Z',
          blocked_by: null,
          basis: { ...basis, processing_source: 'default' },
        },
        NOW,
      ),
    ).toBe('ETA 2026-12-06 15:00 UTC (in 2d 3h), default speed');
    expect(etaText(null, NOW)).toBe('');
  });

  it('says why nothing moves instead of an ETA', () => {
    expect(
      etaText(
        {
          finish_at: null,
          blocked_by: { reason: 'budget', scope: 'tenant:acme', window: 'daily', parked: 7 },
          basis,
        },
        NOW,
      ),
    ).toBe('waiting for money: 7 parked on tenant:acme daily');
    expect(
      etaText(
        { finish_at: null, blocked_by: { reason: 'provider_paused', until: '2026-12-04T12:00:30Z' }, basis },
        NOW,
      ),
    ).toBe('provider paused (429) until 12:00:30 UTC');
    expect(
      etaText(
        {
          finish_at: '2026-12-04T12:00:40Z',
          blocked_by: { reason: 'in_flight_full', in_flight: 100, max_in_flight: 100 },
          basis,
        },
        NOW,
      ),
    ).toBe('ETA 12:00:40 UTC (in 40s); in-flight cap full (100/100)');
  });

  it('reads durations like a person', () => {
    expect([duration(0), duration(59_400), duration(3_600_000), duration(4 * 86_400_000)]).toEqual([
      '0s',
      '59s',
      '1h 00m',
      '4d 0h',
    ]);
  });
});
