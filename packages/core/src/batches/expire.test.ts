import { describe, expect, it } from 'vitest';
import { AppError } from '../errors/app-error.js';
import { JOB_STATES } from '../model/states.js';
import { type BatchCounts, type BatchRecord, batchStatus } from './batch-store.js';
import { parseCompletionWindow, windowClosed } from './expire.js';

describe('completion windows', () => {
  it.each([
    ['1s', 1_000],
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['24h', 86_400_000],
    ['30d', 2_592_000_000],
  ])('reads %s', (text, ms) => {
    expect(parseCompletionWindow(text)).toBe(ms);
  });

  it.each(['', '24', 'h', '0s', '999ms', '31d', '1.5h', '-1h', '24 hours', '1e3s'])(
    'refuses "%s", naming the field',
    (text) => {
      const err = (() => {
        try {
          parseCompletionWindow(text);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).statusCode).toBe(400);
      expect((err as AppError).issues).toEqual([expect.objectContaining({ path: 'completion_window' })]);
    },
  );

  it('closes at expires_at, not before; a row without one never closes', () => {
    const at = '2026-12-04T12:00:00.000Z';
    expect(windowClosed({ expires_at: at }, Date.parse(at) - 1)).toBe(false);
    expect(windowClosed({ expires_at: at }, Date.parse(at))).toBe(true);
    expect(windowClosed({}, Number.MAX_SAFE_INTEGER)).toBe(false);
  });
});

describe('batch status with expired rows', () => {
  const batch = { total: 4, stored_status: 'queued' } as BatchRecord;
  const counts = (c: Partial<BatchCounts>) =>
    ({ ...Object.fromEntries(JOB_STATES.map((s) => [s, 0])), ...c }) as BatchCounts;

  it('is expired once every row is over and one expired, in_progress before', () => {
    expect(batchStatus(batch, counts({ completed: 2, expired: 1, running: 1 }))).toBe('in_progress');
    expect(batchStatus(batch, counts({ completed: 2, failed: 1, expired: 1 }))).toBe('expired');
    expect(batchStatus(batch, counts({ completed: 3, failed: 1 }))).toBe('completed_with_errors');
  });

  it('is cancelled when it was being cancelled, whatever expired meanwhile', () => {
    const cancelling = { ...batch, stored_status: 'cancelling' } as BatchRecord;
    expect(batchStatus(cancelling, counts({ cancelled: 2, expired: 2 }))).toBe('cancelled');
  });
});
