import { describe, expect, it } from 'vitest';
import {
  isTerminalStatus,
  parseTaskStatus,
  type StatusNumbering,
  statusToNumber,
  type TaskStatusName,
  TaskStatusNames,
} from './status.js';

describe('parseTaskStatus', () => {
  const table: Array<[unknown, unknown, StatusNumbering, TaskStatusName]> = [
    // numbers, current numbering
    [0, undefined, 'current', 'unknown'],
    [1, undefined, 'current', 'received'],
    [2, undefined, 'current', 'queued'],
    [3, undefined, 'current', 'dispatched'],
    [4, undefined, 'current', 'preparing'],
    [5, undefined, 'current', 'serving'],
    [6, undefined, 'current', 'setting_up'],
    [7, undefined, 'current', 'running'],
    [8, undefined, 'current', 'cancelling'],
    [9, undefined, 'current', 'uploading'],
    [10, undefined, 'current', 'completed'],
    [11, undefined, 'current', 'failed'],
    [12, undefined, 'current', 'cancelled'],
    // numbers, legacy (pre-2026) numbering
    [7, undefined, 'legacy', 'running'],
    [8, undefined, 'legacy', 'uploading'],
    [9, undefined, 'legacy', 'completed'],
    [10, undefined, 'legacy', 'failed'],
    [11, undefined, 'legacy', 'cancelled'],
    [12, undefined, 'legacy', 'unknown'],
    // numeric strings
    ['10', undefined, 'current', 'completed'],
    [' 9 ', undefined, 'legacy', 'completed'],
    // names, any case and separator
    ['completed', undefined, 'current', 'completed'],
    ['COMPLETED', undefined, 'legacy', 'completed'],
    ['Setting Up', undefined, 'current', 'setting_up'],
    ['setting-up', undefined, 'current', 'setting_up'],
    ['canceled', undefined, 'current', 'cancelled'],
    // status_text wins over the number, whatever the numbering
    [9, 'completed', 'current', 'completed'],
    [9, 'uploading', 'legacy', 'uploading'],
    [10, 'Failed', 'current', 'failed'],
    // unrecognized or 'unknown' status_text falls back to the number
    [10, 'weird', 'current', 'completed'],
    [10, 'unknown', 'current', 'completed'],
    [10, 42, 'current', 'completed'],
    [10, null, 'current', 'completed'],
    // garbage never throws
    [13, undefined, 'current', 'unknown'],
    [-1, undefined, 'current', 'unknown'],
    [2.5, undefined, 'current', 'unknown'],
    [Number.NaN, undefined, 'current', 'unknown'],
    ['', undefined, 'current', 'unknown'],
    ['done', undefined, 'current', 'unknown'],
    [null, undefined, 'current', 'unknown'],
    [undefined, undefined, 'current', 'unknown'],
    [true, undefined, 'current', 'unknown'],
    [{ status: 10 }, undefined, 'current', 'unknown'],
    [undefined, 'running', 'current', 'running'],
  ];
  it.each(table)('(%j, %j, %s) → %s', (raw, text, numbering, expected) => {
    expect(parseTaskStatus(raw, text, numbering)).toBe(expected);
  });

  it('defaults to the current numbering', () => {
    expect(parseTaskStatus(9, undefined)).toBe('uploading');
  });

  it('round-trips every name through its number', () => {
    for (const name of TaskStatusNames) {
      expect(parseTaskStatus(statusToNumber(name, 'current'), undefined, 'current')).toBe(name);
      const legacy = statusToNumber(name, 'legacy');
      if (name === 'cancelling') expect(legacy).toBeUndefined();
      else expect(parseTaskStatus(legacy, undefined, 'legacy')).toBe(name);
    }
  });
});

describe('isTerminalStatus', () => {
  it('is true for completed, failed and cancelled only', () => {
    const terminal = TaskStatusNames.filter(isTerminalStatus);
    expect(terminal).toEqual(['completed', 'failed', 'cancelled']);
  });
});
