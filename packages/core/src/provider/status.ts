import { z } from 'zod';

/** Provider task statuses by name. The names are stable; the numbers behind them are not (see below). */
export const TaskStatusNames = [
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
export const TaskStatusNameSchema = z.enum(TaskStatusNames);
export type TaskStatusName = z.infer<typeof TaskStatusNameSchema>;

/**
 * The provider renumbered its statuses in January 2026 (`cancelling` was inserted at 8). Old docs, the
 * product page's webhook example and possibly older deployments still use the legacy numbers, so the
 * numbering is a setting rather than a constant.
 */
export const StatusNumberingSchema = z.enum(['current', 'legacy']);
export type StatusNumbering = z.infer<typeof StatusNumberingSchema>;

const CURRENT: readonly TaskStatusName[] = TaskStatusNames;
const LEGACY: readonly TaskStatusName[] = [
  'unknown',
  'received',
  'queued',
  'dispatched',
  'preparing',
  'serving',
  'setting_up',
  'running',
  'uploading',
  'completed',
  'failed',
  'cancelled',
];

const TERMINAL: ReadonlySet<TaskStatusName> = new Set(['completed', 'failed', 'cancelled']);

// US spellings mean the same state; anything else unrecognized stays `unknown` rather than guessed.
const ALIASES: Readonly<Record<string, TaskStatusName>> = {
  canceled: 'cancelled',
  canceling: 'cancelling',
};

const NAME_SET: ReadonlySet<string> = new Set(TaskStatusNames);

function isStatusName(value: string): value is TaskStatusName {
  return NAME_SET.has(value);
}

/** The status name for a number under a numbering, or undefined when the number means nothing there. */
export function statusFromNumber(
  value: number,
  numbering: StatusNumbering = 'current',
): TaskStatusName | undefined {
  if (!Number.isInteger(value) || value < 0) return undefined;
  const table = numbering === 'legacy' ? LEGACY : CURRENT;
  return table[value];
}

/** The number a status name has under a numbering (legacy has no `cancelling`). */
export function statusToNumber(
  name: TaskStatusName,
  numbering: StatusNumbering = 'current',
): number | undefined {
  const table = numbering === 'legacy' ? LEGACY : CURRENT;
  const index = table.indexOf(name);
  return index < 0 ? undefined : index;
}

function statusFromName(value: string): TaskStatusName | undefined {
  const key = value
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, '_');
  if (isStatusName(key)) return key;
  return ALIASES[key];
}

function statusFromRaw(raw: unknown, numbering: StatusNumbering): TaskStatusName | undefined {
  if (typeof raw === 'number') return statusFromNumber(raw, numbering);
  if (typeof raw !== 'string') return undefined;
  const trimmed = raw.trim();
  if (/^\d+$/.test(trimmed)) return statusFromNumber(Number(trimmed), numbering);
  return statusFromName(trimmed);
}

/**
 * Normalize a provider status. `status_text` wins when it is a recognized name, because it means the
 * same thing under both numberings; the bare number is only trusted through the configured numbering.
 * Never throws: anything unrecognized is `unknown`, and callers must not settle money on `unknown`.
 */
export function parseTaskStatus(
  raw: unknown,
  statusText: unknown,
  numbering: StatusNumbering = 'current',
): TaskStatusName {
  if (typeof statusText === 'string') {
    const fromText = statusFromName(statusText);
    // `unknown` carries no information, so let the raw value have a say.
    if (fromText && fromText !== 'unknown') return fromText;
  }
  return statusFromRaw(raw, numbering) ?? 'unknown';
}

export function isTerminalStatus(name: TaskStatusName): boolean {
  return TERMINAL.has(name);
}
