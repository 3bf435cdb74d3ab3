import { describe, expect, it } from 'vitest';
import { estimate, interleaved, type PipelineSnapshot, type WorkToEstimate } from './eta.js';

const NOW = Date.parse('2026-12-04T12:00:00.000Z');

function pipeline(over: Partial<PipelineSnapshot> = {}): PipelineSnapshot {
  return {
    now: NOW,
    submitsPerWindow: 0,
    windowMs: 60_000,
    maxInFlight: 0,
    pausedUntil: null,
    inFlight: [],
    inFlightCount: 0,
    lines: {},
    weights: {},
    handed: 0,
    meanTask: { msPerSecond: 100, seconds: 10 },
    turnaroundMs: 0,
    ...over,
  };
}

function work(over: Partial<WorkToEstimate> = {}): WorkToEstimate {
  return {
    tenant: 'a',
    unsent: 0,
    parked: 0,
    ownLineAhead: 0,
    secondsPerJob: 10,
    msPerSecond: 100,
    processing: { source: 'observed', tasks: 5 },
    ...over,
  };
}

const secondsFromNow = (iso: string | null) => (iso === null ? null : (Date.parse(iso) - NOW) / 1000);

describe('estimate', () => {
  it('cycles the in-flight slots: 40 one-second tasks through 4 slots take 10 s', () => {
    const eta = estimate(pipeline({ maxInFlight: 4 }), work({ unsent: 40, ownLineAhead: 40 }));
    expect(secondsFromNow(eta.finish_at)).toBe(10);
    // Each slot turned around in 100 ms more than the provider's second: 11 s.
    const turned = estimate(
      pipeline({ maxInFlight: 4, turnaroundMs: 100 }),
      work({ unsent: 40, ownLineAhead: 40 }),
    );
    expect(secondsFromNow(turned.finish_at)).toBe(11);
    expect(eta.blocked_by).toBeNull();
    expect(eta.basis).toMatchObject({ jobs_ahead: 40, output_seconds_ahead: 400, max_in_flight: 4 });
  });

  it('paces by the submit rate when it binds: 50 jobs at 100 a minute, 5 s each', () => {
    const eta = estimate(
      pipeline({ submitsPerWindow: 100 }),
      work({ unsent: 50, ownLineAhead: 50, msPerSecond: 500 }),
    );
    // The 50th submit goes 49 intervals of 600 ms after the first, then takes 5 s.
    expect(secondsFromNow(eta.finish_at)).toBe(34); // 34.4 s, to the second
    expect(eta.basis.submits_per_minute).toBe(100);
  });

  it('counts the other tenants fair share sends first, by weight, and what is already handed over', () => {
    expect(interleaved('a', 10, { a: 10, b: 100, c: 3 }, { b: 2 })).toBe(23);
    const eta = estimate(
      pipeline({ maxInFlight: 1, lines: { a: 10, b: 100 }, handed: 2 }),
      work({ unsent: 10, ownLineAhead: 10 }),
    );
    // 10 own + 10 of b's + 2 handed, one at a time at 1 s each.
    expect(eta.basis.jobs_ahead).toBe(22);
    expect(secondsFromNow(eta.finish_at)).toBe(22);
  });

  it('starts from when each slot frees: tasks in flight end by their expected time', () => {
    const inFlight = [
      { since: NOW - 900, expectedMs: 1000, own: false },
      { since: NOW - 200, expectedMs: 1000, own: true },
    ];
    const eta = estimate(
      pipeline({ maxInFlight: 2, inFlight, inFlightCount: 2 }),
      work({ unsent: 1, ownLineAhead: 1 }),
    );
    // The first slot frees in 100 ms, then the job takes 1 s.
    expect(secondsFromNow(eta.finish_at)).toBe(1); // 1.1 s, to the second
    const tail = estimate(pipeline({ maxInFlight: 2, inFlight, inFlightCount: 2 }), work());
    expect(secondsFromNow(tail.finish_at)).toBe(1); // only its own task, 800 ms left
    const late = estimate(
      pipeline({ maxInFlight: 2, inFlight, inFlightCount: 2 }),
      work({ unsent: 3, ownLineAhead: 3 }),
    );
    // Slots free in 0.1 and 0.8 s; the third job takes the first slot again after its 1 s job.
    expect(secondsFromNow(late.finish_at)).toBe(2);
  });

  it('names a full in-flight cap taken by other work, and still estimates', () => {
    const inFlight = [{ since: NOW, expectedMs: 3000, own: false }];
    const eta = estimate(
      pipeline({ maxInFlight: 1, inFlight, inFlightCount: 1 }),
      work({ unsent: 2, ownLineAhead: 2 }),
    );
    expect(eta.blocked_by).toEqual({ reason: 'in_flight_full', in_flight: 1, max_in_flight: 1 });
    expect(secondsFromNow(eta.finish_at)).toBe(5);
  });

  it('says it waits for money instead of an estimate when all that is left is parked', () => {
    const eta = estimate(
      pipeline(),
      work({ unsent: 5, parked: 5, parkedOn: { scope: 'batch:b1', window: 'lifetime' }, ownLineAhead: 0 }),
    );
    expect(eta.finish_at).toBeNull();
    expect(eta.blocked_by).toEqual({ reason: 'budget', scope: 'batch:b1', window: 'lifetime', parked: 5 });
    // Parked rows behind tasks of its own still in flight: those free money, it moves.
    const moving = estimate(
      pipeline({ inFlight: [{ since: NOW, expectedMs: 1000, own: true }], inFlightCount: 1 }),
      work({ unsent: 5, parked: 5 }),
    );
    expect(moving.blocked_by).toBeNull();
    expect(moving.finish_at).not.toBeNull();
  });

  it('says the provider is paused, and until when, instead of an estimate', () => {
    const eta = estimate(pipeline({ pausedUntil: NOW + 30_000 }), work({ unsent: 3, ownLineAhead: 3 }));
    expect(eta.finish_at).toBeNull();
    expect(eta.blocked_by).toEqual({
      reason: 'provider_paused',
      until: new Date(NOW + 30_000).toISOString(),
    });
  });
});
