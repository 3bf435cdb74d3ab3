import { describe, expect, it } from 'vitest';
import { AppError } from '../errors/app-error.js';
import { formatFromContentType, parseManifest } from './parse-manifest.js';
import { collect, IMG, LIMITS, VIDEO } from './test-helpers.js';

const jobs = [
  { custom_id: 'a', video: VIDEO, images: IMG, turbo: true, seed: 3 },
  { custom_id: 'b', video: VIDEO, images: [IMG[0]], resolution: '1080p', duration_seconds: 12.5 },
  { video: VIDEO, images: IMG, instruction_prompt: 'swap, then "smile"', save_audio: false },
];

describe('parseManifest', () => {
  it('reads the same requests from JSONL and both CSV image styles', async () => {
    const jsonl = await collect(jobs.map((j) => JSON.stringify(j)).join('\n'), { format: 'jsonl' });
    const header = 'custom_id,video,turbo,seed,resolution,duration_seconds,instruction_prompt,save_audio';
    const cells = (j: Record<string, unknown>) =>
      header
        .split(',')
        .map((c) => (j[c] === undefined ? '' : `"${String(j[c]).replaceAll('"', '""')}"`))
        .join(',');
    const piped = await collect(
      [`${header},images`, ...jobs.map((j) => `${cells(j)},${j.images.join('|')}`)].join('\n'),
      { format: 'csv' },
    );
    const columns = await collect(
      [
        `images_1,${header},images_2`,
        ...jobs.map((j) => `${j.images[0]},${cells(j)},${j.images[1] ?? ''}`),
      ].join('\r\n'),
      { format: 'csv' },
    );
    expect(jsonl.errors).toEqual([]);
    expect(jsonl.rows.map((r) => r.line)).toEqual([1, 2, 3]);
    const requests = jsonl.rows.map(({ custom_id, request }) => ({ custom_id, request }));
    for (const csv of [piped, columns]) {
      expect(csv.errors).toEqual([]);
      expect(csv.rows.map((r) => r.line)).toEqual([2, 3, 4]);
      expect(csv.rows.map(({ custom_id, request }) => ({ custom_id, request }))).toEqual(requests);
    }
  });

  it('refuses a duplicate custom_id on the later row, naming the first line', async () => {
    const text = ['a', 'b', '', 'a', 'a']
      .map((id) => (id ? JSON.stringify({ ...jobs[2], custom_id: id }) : ''))
      .join('\n');
    const { rows, errors } = await collect(text, { format: 'jsonl' });
    expect(rows.map((r) => r.custom_id)).toEqual(['a', 'b']);
    expect(errors.map((e) => [e.line, e.custom_id, e.path, e.message])).toEqual([
      [4, 'a', 'custom_id', 'duplicate custom_id: first used on line 1'],
      [5, 'a', 'custom_id', 'duplicate custom_id: first used on line 1'],
    ]);
  });

  it('merges defaults under each row; the row wins; empty CSV cells take the default', async () => {
    const defaults = { images: IMG, resolution: '1080p', turbo: true };
    const jsonl = await collect(
      `{"video":"${VIDEO}"}\n{"video":"${VIDEO}","turbo":false,"images":["${IMG[1]}"]}`,
      {
        format: 'jsonl',
        defaults,
      },
    );
    const csv = await collect(`video,turbo,images\n${VIDEO},,\n${VIDEO},false,${IMG[1]}\n`, {
      format: 'csv',
      defaults,
    });
    for (const { rows, errors } of [jsonl, csv]) {
      expect(errors).toEqual([]);
      expect(rows[0]?.request).toMatchObject({ images: IMG, resolution: '1080p', turbo: true });
      expect(rows[1]?.request).toMatchObject({ images: [IMG[1]], resolution: '1080p', turbo: false });
    }
  });

  it('refuses invalid defaults once, up front (400)', async () => {
    for (const defaults of [{ turbo: 'yes' }, { colour: 'red' }, { custom_id: 'x' }]) {
      await expect(collect(JSON.stringify(jobs[0]), { format: 'jsonl', defaults })).rejects.toMatchObject({
        code: 'VALIDATION_FAILED',
        statusCode: 400,
        message: expect.stringMatching(/^invalid defaults: defaults\./),
      });
    }
  });

  it('throws "manifest has no rows" for an empty file, blank lines or a CSV header alone', async () => {
    const cases: [string, 'jsonl' | 'csv'][] = [
      ['', 'jsonl'],
      ['\n\r\n  \n', 'jsonl'],
      ['\uFEFF', 'jsonl'],
      ['', 'csv'],
      ['video,images\r\n', 'csv'],
      ['video,images\n,\n\n', 'csv'],
    ];
    for (const [text, format] of cases) {
      const err = await collect(text, { format }).catch((e: unknown) => e);
      expect(err, JSON.stringify(text)).toBeInstanceOf(AppError);
      expect(err).toMatchObject({
        code: 'VALIDATION_FAILED',
        statusCode: 400,
        message: 'manifest has no rows',
      });
    }
  });

  it('streams 10,000 rows, one item each, in order', async () => {
    const line = `${JSON.stringify({ video: VIDEO, images: IMG })}\n`;
    let pulled = 0;
    async function* source() {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield line.repeat(100);
      }
    }
    let count = 0;
    let pulledAtFirstRow = 0;
    for await (const item of parseManifest(source(), { format: 'jsonl', limits: LIMITS })) {
      if (count === 0) pulledAtFirstRow = pulled;
      expect(item.ok && item.row.line).toBe(++count);
    }
    expect(count).toBe(10_000);
    expect(pulledAtFirstRow).toBe(1);
  });
});

describe('formatFromContentType', () => {
  it.each([
    ['application/x-ndjson', 'jsonl'],
    ['application/jsonl; charset=utf-8', 'jsonl'],
    ['Text/CSV; charset="UTF-8"', 'csv'],
    ['text/csv;header=present', 'csv'],
    ['text/csv; charset=iso-8859-1', undefined],
    ['application/json', undefined],
    [undefined, undefined],
  ])('%s → %s', (contentType, format) => {
    expect(formatFromContentType(contentType)).toBe(format);
  });
});
