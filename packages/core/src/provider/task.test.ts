import { describe, expect, it } from 'vitest';
import { billedSeconds, outputVideoUrl, taskError, toTaskList } from './task.js';
import { TaskListWireSchema } from './wire-schemas.js';

const meta = (outputs: unknown) => ({ output: { output_meta: { outputs } } });

describe('billedSeconds', () => {
  it('reads output.output_meta.outputs[0].seconds', () => {
    expect(billedSeconds(meta([{ type: 'video', seconds: 5.04, fps: 24 }]))).toBe(5.04);
    expect(billedSeconds(meta([{ seconds: 0 }]))).toBe(0);
    expect(billedSeconds(meta([{ seconds: 3 }, { seconds: 9 }]))).toBe(3);
  });

  it('is undefined for anything that is not a finite number >= 0', () => {
    const bad: unknown[] = [
      undefined,
      null,
      'x',
      { output_meta: null },
      { output_meta: { outputs: [] } },
      { output_meta: { outputs: {} } },
      { output_meta: { outputs: [null] } },
      { output_meta: { outputs: [{ seconds: '5' }] } },
      { output_meta: { outputs: [{ seconds: -1 }] } },
      { output_meta: { outputs: [{ seconds: Number.POSITIVE_INFINITY }] } },
      { output_meta: { outputs: [{ seconds: Number.NaN }] } },
    ];
    for (const output of bad) expect(billedSeconds({ output })).toBeUndefined();
    expect(billedSeconds({})).toBeUndefined();
  });
});

describe('outputVideoUrl', () => {
  it('accepts a URL string, {uri} or {url}', () => {
    expect(outputVideoUrl({ output: { video: 'https://cdn/x.mp4' } })).toBe('https://cdn/x.mp4');
    expect(outputVideoUrl({ output: { video: { uri: 'https://cdn/y.mp4', url: 'https://other' } } })).toBe(
      'https://cdn/y.mp4',
    );
    expect(outputVideoUrl({ output: { video: { url: 'https://cdn/z.mp4' } } })).toBe('https://cdn/z.mp4');
  });

  it('is undefined when there is no usable video', () => {
    for (const output of [
      undefined,
      null,
      {},
      { video: '' },
      { video: 3 },
      { video: { uri: '' } },
      { video: [] },
    ]) {
      expect(outputVideoUrl({ output })).toBeUndefined();
    }
  });
});

describe('taskError', () => {
  it('reads a string or an error object', () => {
    expect(taskError({ error: 'safety checker tripped' })).toBe('safety checker tripped');
    expect(taskError({ error: { message: 'boom' } })).toBe('boom');
    expect(taskError({ error: '' })).toBeUndefined();
    expect(taskError({ error: null })).toBeUndefined();
    expect(taskError({})).toBeUndefined();
  });
});

describe('toTaskList', () => {
  it('derives hasNext from the cursor when has_next is missing', () => {
    const wire = TaskListWireSchema.parse({ items: [], next_cursor: 'abc' });
    expect(toTaskList(wire, 'current')).toEqual({ items: [], nextCursor: 'abc', hasNext: true });
  });
});
