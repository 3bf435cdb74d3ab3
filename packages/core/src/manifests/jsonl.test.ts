import { describe, expect, it } from 'vitest';
import { collect, IMG, inChunks, VIDEO } from './test-helpers.js';

const row = (extra: Record<string, unknown> = {}) => JSON.stringify({ video: VIDEO, images: IMG, ...extra });

describe('JSONL manifests', () => {
  it('reads one job request a line, defaulted by the job schema', async () => {
    const { rows, errors } = await collect(`${row({ custom_id: 'a' })}\n${row({ turbo: true, seed: 7 })}\n`, {
      format: 'jsonl',
    });
    expect(errors).toEqual([]);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({
      line: 1,
      custom_id: 'a',
      request: { video: VIDEO, images: IMG, turbo: false },
    });
    expect(rows[0]?.request).not.toHaveProperty('custom_id');
    expect(rows[1]).toMatchObject({
      line: 2,
      custom_id: null,
      request: { turbo: true, seed: 7, resolution: '720p' },
    });
  });

  it('strips a UTF-8 BOM, handles CRLF and a last line without newline', async () => {
    const { rows, errors } = await collect(`\uFEFF${row({ custom_id: 'a' })}\r\n${row({ custom_id: 'b' })}`, {
      format: 'jsonl',
    });
    expect(errors).toEqual([]);
    expect(rows.map((r) => [r.line, r.custom_id])).toEqual([
      [1, 'a'],
      [2, 'b'],
    ]);
  });

  it('decodes multi-byte characters split across chunks (1-byte chunks)', async () => {
    const text = `\uFEFF${row({ instruction_prompt: 'Zoë 🎬 日本語', custom_id: 'ü-1' })}\r\n${row({ custom_id: '✓' })}\n`;
    const { rows, errors } = await collect(inChunks(text, 1), { format: 'jsonl' });
    expect(errors).toEqual([]);
    expect(rows.map((r) => r.custom_id)).toEqual(['ü-1', '✓']);
    expect(rows[0]?.request.instruction_prompt).toBe('Zoë 🎬 日本語');
  });

  it('skips blank lines but keeps counting them', async () => {
    const text = `\n${row({ custom_id: 'a' })}\n\n   \r\n${row({ custom_id: 'b', turbo: 'yes' })}\n\n`;
    const { rows, errors } = await collect(text, { format: 'jsonl' });
    expect(rows.map((r) => r.line)).toEqual([2]);
    expect(errors).toEqual([expect.objectContaining({ line: 5, custom_id: 'b', path: 'turbo' })]);
  });

  it('reports broken JSON, non-objects and invalid UTF-8 on their line', async () => {
    const bad = Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d, 0x0a]);
    async function* source() {
      yield Buffer.from(`{"video": \n[1,2]\n"text"\nnull\n`);
      yield bad;
      yield Buffer.from(row());
    }
    const { rows, errors } = await collect(source(), { format: 'jsonl' });
    expect(rows.map((r) => r.line)).toEqual([6]);
    expect(errors.map((e) => [e.line, e.path, e.custom_id])).toEqual([
      [1, '(line)', null],
      [2, '(line)', null],
      [3, '(line)', null],
      [4, '(line)', null],
      [5, '(line)', null],
    ]);
    expect(errors[0]?.message).toMatch(/^invalid JSON: /);
    expect(errors[1]?.message).toBe('must be a JSON object, got an array');
    expect(errors[2]?.message).toBe('must be a JSON object, got a string');
    expect(errors[3]?.message).toBe('must be a JSON object, got null');
    expect(errors[4]?.message).toBe('invalid UTF-8');
  });

  it('names the field holding invalid UTF-8, and refuses __proto__ keys as reserved, not dropped', async () => {
    const prompt = Buffer.concat([
      Buffer.from(`{"custom_id":"u","video":"${VIDEO}","images":["${IMG[0]}"],"instruction_prompt":"caf`),
      Buffer.from([0xe9]),
      Buffer.from('"}\n'),
    ]);
    async function* source() {
      yield prompt;
      yield Buffer.from(`${row({ custom_id: 'p', metadata: JSON.parse('{"__proto__":{"admin":true}}') })}\n`);
      yield Buffer.from(
        `${JSON.stringify({ __proto__: null, custom_id: 'top', video: VIDEO, images: IMG })}\n`,
      );
      yield Buffer.from(
        `{"__proto__":{"x":1},"custom_id":"own","video":"${VIDEO}","images":["${IMG[0]}"]}\n`,
      );
      yield Buffer.from(`${row({ custom_id: 'fps', target_fps: 48 })}\n`);
    }
    const { rows, errors } = await collect(source(), { format: 'jsonl' });
    expect(errors.map((e) => [e.line, e.custom_id, e.path, e.message])).toEqual([
      [1, null, 'instruction_prompt', 'invalid UTF-8'],
      [2, 'p', 'metadata.__proto__', 'reserved key'],
      [4, 'own', '__proto__', 'reserved key'],
    ]);
    expect(rows.map((r) => [r.line, r.custom_id, r.request.target_fps])).toEqual([
      [3, 'top', 'original'],
      [5, 'fps', '48'],
    ]);
  });

  it('refuses metadata nested thousands of levels deep as a row error naming metadata', async () => {
    const deep = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
    const line = `{"custom_id":"deep","video":"${VIDEO}","images":["${IMG[0]}"],"metadata":${deep}}\n`;
    const { rows, errors } = await collect(`${line}${row({ custom_id: 'ok' })}`, { format: 'jsonl' });
    expect(errors.map((e) => [e.line, e.custom_id, e.path, e.message])).toEqual([
      [1, 'deep', 'metadata', 'must nest at most 32 levels deep'],
    ]);
    expect(rows).toHaveLength(1);
  });

  it('names the field: wrong types, bad URL, 5 images, bad image, unknown field', async () => {
    const five = [...IMG, ...IMG, IMG[0]];
    const text = [
      row({ custom_id: 'turbo', turbo: 'yes' }),
      row({ custom_id: 'seed', seed: 1.5 }),
      row({ custom_id: 'url', video: 'ftp://example.com/v.mp4' }),
      row({ custom_id: 'five', images: five }),
      row({ custom_id: 'img', images: [IMG[0], 'not a url'] }),
      row({ custom_id: 'unknown', colour: 'red' }),
      JSON.stringify({ custom_id: 'missing', images: IMG }),
    ].join('\n');
    const { rows, errors } = await collect(text, { format: 'jsonl' });
    expect(rows).toEqual([]);
    expect(errors.map((e) => [e.line, e.custom_id, e.path, e.message])).toEqual([
      [1, 'turbo', 'turbo', 'must be a boolean'],
      [2, 'seed', 'seed', 'must be an integer or null'],
      [3, 'url', 'video', 'must be an absolute http(s) URL'],
      [4, 'five', 'images', 'must hold at most 4 images'],
      [5, 'img', 'images.1', 'must be an absolute http(s) URL'],
      [6, 'unknown', 'colour', 'unknown field: colour'],
      [7, 'missing', 'video', 'must be a string URL'],
    ]);
  });

  it('reports every problem of a row in issues, the first as path/message', async () => {
    const { errors } = await collect(row({ custom_id: 'x', turbo: 'yes', seed: 'no', extra: 1 }), {
      format: 'jsonl',
    });
    expect(errors).toHaveLength(1);
    expect(errors[0]?.issues.map((i) => i.path)).toEqual(['turbo', 'seed', 'extra']);
    expect(errors[0]).toMatchObject({ path: 'turbo', message: 'must be a boolean' });
  });

  it('refuses a custom_id that is not a 1-64 character string', async () => {
    const text = [row({ custom_id: 42 }), row({ custom_id: '' }), row({ custom_id: 'x'.repeat(65) })].join(
      '\n',
    );
    const { errors } = await collect(text, { format: 'jsonl' });
    expect(errors.map((e) => [e.line, e.custom_id, e.path])).toEqual([
      [1, null, 'custom_id'],
      [2, null, 'custom_id'],
      [3, null, 'custom_id'],
    ]);
  });
});
