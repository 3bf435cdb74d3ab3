import type { Batch } from '@recast/client';

export type Eta = NonNullable<Batch['eta']>;

/** `3m 12s`, `1h 04m`, `2d 3h`: how long, for a person. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** `14:32:05 UTC` today, else the date too. */
function clock(iso: string, now: number): string {
  const at = new Date(iso);
  const sameDay = at.toISOString().slice(0, 10) === new Date(now).toISOString().slice(0, 10);
  return sameDay
    ? `${at.toISOString().slice(11, 19)} UTC`
    : `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/**
 * The estimate in words: `ETA 14:32:05 UTC (in 3m 12s)`, or why nothing moves instead
 * (`waiting for money: 3 rows parked on batch:bat_… lifetime`, `provider paused (429) until …`);
 * a full in-flight cap is named next to the estimate.
 */
export function etaText(eta: Eta | null | undefined, now = Date.now()): string {
  if (!eta) return '';
  const why = eta.blocked_by;
  if (why?.reason === 'budget') {
    const on = why.scope ? ` on ${why.scope}${why.window ? ` ${why.window}` : ''}` : '';
    return `waiting for money: ${why.parked} parked${on}`;
  }
  if (why?.reason === 'provider_paused') {
    return `provider paused (429) until ${clock(why.until, now)}`;
  }
  const estimate = eta.finish_at
    ? `ETA ${clock(eta.finish_at, now)} (in ${duration(Date.parse(eta.finish_at) - now)})`
    : 'ETA unknown';
  const source = eta.basis.processing_source === 'default' ? ', default speed' : '';
  if (why?.reason === 'in_flight_full') {
    return `${estimate}${source}; in-flight cap full (${why.in_flight}/${why.max_in_flight})`;
  }
  return `${estimate}${source}`;
}
