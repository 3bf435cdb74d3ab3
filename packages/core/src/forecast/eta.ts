/**
 * When a piece of work (a batch's remaining rows, a tenant's backlog, a manifest being quoted)
 * will be done, from what is known now: the jobs that will be sent before its last one (its own,
 * and the other tenants' that fair share interleaves), the provider's submit rate and in-flight
 * cap, the tasks in flight and how long each still has, and the processing time per output
 * second observed on completed tasks. Pure arithmetic over a snapshot (forecaster.ts reads it),
 * so it is tested on its own. Ours: it is the scheduling model of this service, no library has it.
 *
 * The model. The jobs ahead go out in order through two bounds at once: the pace (one submit per
 * window / limit) and the slots (at most `maxInFlight` tasks at the provider; a slot frees when
 * its task ends). The last job of the work starts when both allow it:
 *   start = max(N / rate, slotFree[(N - 1) mod C] + floor((N - 1) / C) * meanTask)
 * (the slots cycle, each taking a job every mean task time once its current task ends) and ends
 * one task of its own later; the work is done when that job and every one of its tasks already in
 * flight are done.
 */

/** Why the work cannot move now; `finish_at` is null for the first two (it depends on others). */
export type Blocker =
  | { reason: 'budget'; scope: string | null; window: string | null; parked: number }
  | { reason: 'provider_paused'; until: string }
  | { reason: 'in_flight_full'; in_flight: number; max_in_flight: number };

export interface Eta {
  /** Estimated finish (UTC), to the second; null when blocked by money or the provider. */
  finish_at: string | null;
  /** Why the work is not moving now (a full in-flight cap still has an estimate: slots free up). */
  blocked_by: Blocker | null;
  basis: {
    jobs_ahead: number;
    output_seconds_ahead: number;
    submits_per_minute: number | null;
    max_in_flight: number | null;
    ms_per_output_second: number;
    processing_source: 'observed' | 'default';
    tasks_observed: number;
  };
}

export interface InFlightTask {
  /** When it took its slot (ms) and how long it is expected to hold it in all (ms). */
  since: number;
  expectedMs: number;
  /** Whether it belongs to the work being estimated. */
  own: boolean;
}

export interface PipelineSnapshot {
  now: number;
  /** 0: no limit. */
  submitsPerWindow: number;
  windowMs: number;
  /** 0: no cap. */
  maxInFlight: number;
  pausedUntil: number | null;
  inFlight: InFlightTask[];
  /** Every task in flight (inFlight may list only the first ones). */
  inFlightCount: number;
  /** Jobs waiting in each tenant's fair-share line, and the tenants' weights (default 1). */
  lines: Record<string, number>;
  weights: Record<string, number>;
  /** Dispatch steps already handed to BullMQ (they go before anything still in a line). */
  handed: number;
  /** The mean task of the jobs that are not the work's own (all kinds). */
  meanTask: { msPerSecond: number; seconds: number };
  /** How long a slot is held beyond the provider's time (submit, webhook, settle), per task. */
  turnaroundMs: number;
}

export interface WorkToEstimate {
  tenant: string;
  /** Jobs of this work not yet sent (in line, being handed, parked for money). */
  unsent: number;
  /** Of which parked for money (waiting_budget), and what the first of them waits on. */
  parked: number;
  parkedOn?: { scope: string | null; window: string | null };
  /** How far its last unsent job stands in its tenant's line (jobs of the tenant up to it). */
  ownLineAhead: number;
  /** Output seconds per job of this work, and the processing figure of its kind. */
  secondsPerJob: number;
  msPerSecond: number;
  processing: { source: 'observed' | 'default'; tasks: number };
}

const MINUTE = 60_000;

/** To the second: a dashboard polling a steady estimate sees the same answer (and ETag). */
function toSecond(ms: number): string {
  return new Date(Math.round(ms / 1000) * 1000).toISOString();
}

/** The other tenants' jobs that fair share sends before `ownAhead` of this tenant's. */
export function interleaved(
  tenant: string,
  ownAhead: number,
  lines: Record<string, number>,
  weights: Record<string, number>,
): number {
  const own = weights[tenant] ?? 1;
  let others = 0;
  for (const [t, depth] of Object.entries(lines)) {
    if (t === tenant) continue;
    others += Math.min(depth, Math.ceil((ownAhead * (weights[t] ?? 1)) / own));
  }
  return others;
}

export function estimate(snapshot: PipelineSnapshot, work: WorkToEstimate): Eta {
  const { now } = snapshot;
  const moving = work.unsent - work.parked;
  const ownInFlight = snapshot.inFlight.filter((t) => t.own);
  const ownTask = work.msPerSecond * work.secondsPerJob + snapshot.turnaroundMs;
  const otherTask = snapshot.meanTask.msPerSecond * snapshot.meanTask.seconds + snapshot.turnaroundMs;

  const ownAhead = work.unsent > 0 ? Math.max(work.ownLineAhead, work.unsent) : 0;
  const others = work.unsent > 0 ? interleaved(work.tenant, ownAhead, snapshot.lines, snapshot.weights) : 0;
  const handed = work.unsent > 0 ? snapshot.handed : 0;
  const jobsAhead = ownAhead + others + handed;
  const basis: Eta['basis'] = {
    jobs_ahead: jobsAhead,
    output_seconds_ahead:
      Math.round((ownAhead * work.secondsPerJob + (others + handed) * snapshot.meanTask.seconds) * 1000) /
      1000,
    submits_per_minute:
      snapshot.submitsPerWindow > 0 ? (snapshot.submitsPerWindow * MINUTE) / snapshot.windowMs : null,
    max_in_flight: snapshot.maxInFlight > 0 ? snapshot.maxInFlight : null,
    ms_per_output_second: Math.round(work.msPerSecond),
    processing_source: work.processing.source,
    tasks_observed: work.processing.tasks,
  };

  // Nothing of it at the provider, nothing that can be sent: it waits for money.
  if (work.unsent > 0 && moving <= 0 && ownInFlight.length === 0) {
    return {
      finish_at: null,
      blocked_by: {
        reason: 'budget',
        scope: work.parkedOn?.scope ?? null,
        window: work.parkedOn?.window ?? null,
        parked: work.parked,
      },
      basis,
    };
  }
  if (work.unsent > 0 && snapshot.pausedUntil !== null && snapshot.pausedUntil > now) {
    return {
      finish_at: null,
      blocked_by: { reason: 'provider_paused', until: new Date(snapshot.pausedUntil).toISOString() },
      basis,
    };
  }

  const remaining = (t: InFlightTask) => Math.max(0, t.since + t.expectedMs - now);
  let finish = now;
  for (const t of ownInFlight) finish = Math.max(finish, now + remaining(t));

  let blocked: Blocker | null = null;
  if (work.unsent > 0) {
    const rate = snapshot.submitsPerWindow > 0 ? snapshot.submitsPerWindow / snapshot.windowMs : Infinity;
    const bySubmits = Number.isFinite(rate) ? (jobsAhead - 1) / rate : 0;
    let bySlots = 0;
    const cap = snapshot.maxInFlight;
    if (cap > 0) {
      // Slots free at: each task in flight when it should end (the ones not listed, like the mean
      // task half done), the rest now.
      const free = snapshot.inFlight.map((t) => remaining(t));
      for (let i = snapshot.inFlight.length; i < Math.min(snapshot.inFlightCount, cap); i++)
        free.push(otherTask / 2);
      while (free.length < cap) free.push(0);
      free.sort((a, b) => a - b);
      const meanAhead = (ownAhead * ownTask + (others + handed) * otherTask) / jobsAhead;
      const slot = free[(jobsAhead - 1) % cap] ?? 0;
      bySlots = slot + Math.floor((jobsAhead - 1) / cap) * meanAhead;
      if (snapshot.inFlightCount >= cap && ownInFlight.length === 0) {
        blocked = { reason: 'in_flight_full', in_flight: snapshot.inFlightCount, max_in_flight: cap };
      }
    }
    finish = Math.max(finish, now + Math.max(bySubmits, bySlots) + ownTask);
  }
  return { finish_at: toSecond(finish), blocked_by: blocked, basis };
}
