import { describe, expect, it } from 'vitest';
import { AppError } from '../errors/app-error.js';
import { parseWebhookPayload } from './webhook-payload.js';

const slim = {
  id: 'task_1',
  status: 10,
  output: { video: 'https://cdn/x.mp4' },
  error: null,
  session_id: null,
  created_at: '2026-02-01T10:00:00Z',
  updated_at: '2026-02-01T10:01:00Z',
};

function rejection(body: unknown): AppError {
  try {
    parseWebhookPayload(body);
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected parseWebhookPayload to throw');
}

describe('parseWebhookPayload', () => {
  it('reads the bare slim task', () => {
    expect(parseWebhookPayload(slim)).toEqual({
      taskId: 'task_1',
      status: 'completed',
      rawStatus: 10,
      statusText: undefined,
      event: undefined,
      raw: slim,
    });
  });

  it('reads the {event, timestamp, data} envelope', () => {
    const body = {
      event: 'task.completed',
      timestamp: '2026-02-01T10:01:00Z',
      data: { ...slim, status_text: 'completed' },
    };
    expect(parseWebhookPayload(body)).toMatchObject({
      taskId: 'task_1',
      status: 'completed',
      statusText: 'completed',
      event: 'task.completed',
      raw: body.data,
    });
  });

  it('applies the numbering to bare numbers, and status_text over both', () => {
    // The product page's example: a completed task with the legacy number 9.
    expect(parseWebhookPayload({ id: 't', status: 9 }, 'legacy').status).toBe('completed');
    expect(parseWebhookPayload({ id: 't', status: 9 }, 'current').status).toBe('uploading');
    expect(parseWebhookPayload({ id: 't', status: 9, status_text: 'completed' }, 'current').status).toBe(
      'completed',
    );
    expect(parseWebhookPayload({ id: 't', status: 'FAILED' }).status).toBe('failed');
    expect(parseWebhookPayload({ id: 't', status_text: 'cancelled' }).status).toBe('cancelled');
    expect(parseWebhookPayload({ id: 't', status: 99 }).status).toBe('unknown');
  });

  const malformed: Array<[string, unknown, string]> = [
    ['null', null, '(root)'],
    ['an array', [slim], '(root)'],
    ['a string', JSON.stringify(slim), '(root)'],
    ['an empty object', {}, 'id'],
    ['a numeric id', { ...slim, id: 42 }, 'id'],
    ['an empty id', { ...slim, id: '' }, 'id'],
    ['no status at all', { id: 't' }, 'status'],
    ['a status object', { id: 't', status: { code: 10 } }, 'status'],
    ['an envelope whose data is not an object', { event: 'task.completed', data: 'x' }, 'data'],
    ['an envelope whose task has no id', { event: 'task.completed', data: { status: 10 } }, 'data.id'],
  ];
  it.each(malformed)('rejects %s with a 400 naming the field', (_name, body, path) => {
    const err = rejection(body);
    expect(err).toMatchObject({ code: 'VALIDATION_FAILED', statusCode: 400 });
    expect(err.issues?.[0]?.path).toBe(path);
    expect(err.message).toContain(path);
  });
});
