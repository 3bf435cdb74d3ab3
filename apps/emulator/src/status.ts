/** Status names are the emulator's internal truth; numbers are only a view, chosen per response. */
export const STATUS_NAMES = [
  'unknown',
  'received',
  'queued',
  'dispatched',
  'preparing',
  'serving',
  'setting_up',
  'running',
  'cancelling',
  'uploading',
  'completed',
  'failed',
  'cancelled',
] as const;

export type StatusName = (typeof STATUS_NAMES)[number];
export type StatusNumbering = 'current' | 'legacy';

const TERMINAL: ReadonlySet<StatusName> = new Set(['completed', 'failed', 'cancelled']);

export function isTerminal(status: StatusName): boolean {
  return TERMINAL.has(status);
}

/**
 * Before January 2026 the provider numbered `8 uploading, 9 completed, 10 failed, 11 cancelled` and had
 * no cancelling state. A cancelling task is shown as running (7) under the legacy numbering: the
 * old API simply stayed in its previous state until the cancel took effect.
 */
const LEGACY_OVERRIDES: Partial<Record<StatusName, number>> = {
  cancelling: 7,
  uploading: 8,
  completed: 9,
  failed: 10,
  cancelled: 11,
};

export function statusNumber(status: StatusName, numbering: StatusNumbering): number {
  if (numbering === 'legacy') {
    const legacy = LEGACY_OVERRIDES[status];
    if (legacy !== undefined) return legacy;
  }
  return STATUS_NAMES.indexOf(status);
}
