import { describe, expect, it } from 'vitest';
import { collect, IMG, inChunks, VIDEO } from './test-helpers.js';

const csv = (...lines: string[]) => `${lines.join('\n')}\n`;

describe('CSV manifests', () => {
  it('coerces booleans (true/false, any case) and numbers for typed columns only', async () => {
    const text = csv(
      'video,images,turbo,save_audio,seed,duration_seconds,max_provider_retries,instruction_prompt,metadata',
      `${VIDEO},${IMG.join('|')},TRUE,false,-12,12.5,2,42,"{""k"":1}"`,
    );
    const { rows, errors } = await collect(text, { format: 'csv' });
    expect(errors).toEqual([]);
    expect(rows[0]?.request).toMatchObject({
      turbo: true,
      save_audio: false,
      seed: -12,
      duration_seconds: 12.5,
      max_provider_retries: 2,
      instruction_prompt: '42',
      metadata: { k: 1 },
    });
  });

  it('names the column when a cell cannot be coerced', async () => {
    const text = csv(
      'custom_id,video,images,turbo,seed,duration_seconds,metadata',
      `a,${VIDEO},${IMG[0]},yes,,,`,
      `b,${VIDEO},${IMG[0]},1,,,`,
      `c,${VIDEO},${IMG[0]},,1.5,,`,
      `d,${VIDEO},${IMG[0]},,,ten,`,
      `e,${VIDEO},${IMG[0]},,,,{not json`,
    );
    const { rows, errors } = await collect(text, { format: 'csv' });
    expect(rows).toEqual([]);
    expect(errors.map((e) => [e.line, e.custom_id, e.path, e.message])).toEqual([
      [2, 'a', 'turbo', 'must be true or false, got "yes"'],
      [3, 'b', 'turbo', 'must be true or false, got "1"'],
      [4, 'c', 'seed', 'must be an integer or null'],
      [5, 'd', 'duration_seconds', 'must be a number, got "ten"'],
      [6, 'e', 'metadata', 'must be a JSON object'],
    ]);
  });

  it('reads 5 |-separated images as an images error, bad URLs by index', async () => {
    const text = csv(
      'video,images',
      `${VIDEO},${[...IMG, ...IMG, IMG[0]].join('|')}`,
      `${VIDEO},${IMG[0]}|nope`,
    );
    const { errors } = await collect(text, { format: 'csv' });
    expect(errors.map((e) => [e.line, e.path])).toEqual([
      [2, 'images'],
      [3, 'images.1'],
    ]);
  });

  it('orders images_N columns by N and skips empty ones', async () => {
    const text = csv('images_3,video,images_1,images_2', `${IMG[1]},${VIDEO},${IMG[0]},`);
    const { rows, errors } = await collect(text, { format: 'csv' });
    expect(errors).toEqual([]);
    expect(rows[0]?.request.images).toEqual(IMG);
  });

  it('refuses a bad header once, on line 1, and reads no further', async () => {
    const cases: [string, string[]][] = [
      ['video,images,colour', ['colour']],
      ['video,images,video', ['video']],
      ['video,images,images_1', ['images']],
      ['video,images_1,images_5', ['images_5']],
      ['video,,images', ['(column 2)']],
      ['video,images,custom_id,extra1,extra2', ['extra1', 'extra2']],
    ];
    for (const [header, paths] of cases) {
      const { rows, errors } = await collect(csv(header, `${VIDEO},${IMG[0]},x,y,z`), { format: 'csv' });
      expect(rows, header).toEqual([]);
      expect(errors, header).toHaveLength(1);
      expect(errors[0], header).toMatchObject({ line: 1, custom_id: null });
      expect(
        errors[0]?.issues.map((i) => i.path),
        header,
      ).toEqual(paths);
    }
    const { errors } = await collect(csv('video,images,colour'), { format: 'csv' });
    expect(errors[0]?.message).toBe('unknown column: colour');
  });

  it('handles BOM, CRLF, blank lines, quoting and multi-byte characters in 1-byte chunks', async () => {
    const text =
      '\uFEFFcustom_id,video,images,instruction_prompt\r\n' +
      `a,${VIDEO},${IMG[0]},"Zoë says ""hi"", 🎬"\r\n` +
      '\r\n' +
      `b,${VIDEO},${IMG[0]},"two\r\nlines"\r\n` +
      `c,${VIDEO},${IMG[0]},日本語\r\n` +
      `d,${VIDEO},${IMG[0]},"three\nmore\nlines"\r\n` +
      `e,${VIDEO},${IMG[0]},`;
    const whole = await collect(text, { format: 'csv' });
    const split = await collect(inChunks(text, 1), { format: 'csv' });
    expect(split).toEqual(whole);
    expect(whole.errors).toEqual([]);
    expect(whole.rows.map((r) => [r.line, r.custom_id, r.request.instruction_prompt])).toEqual([
      [2, 'a', 'Zoë says "hi", 🎬'],
      [4, 'b', 'two\r\nlines'],
      [6, 'c', '日本語'],
      [7, 'd', 'three\nmore\nlines'],
      [10, 'e', null],
    ]);
  });

  it('reports a wrong column count as a row error and goes on', async () => {
    const text = csv(
      'video,images',
      `${VIDEO}`,
      `${VIDEO},${IMG[0]},extra`,
      '',
      `${VIDEO},"${IMG[0]}\n"`,
      'x,y,z',
    );
    const { rows, errors } = await collect(text, { format: 'csv' });
    expect(rows.map((r) => r.line)).toEqual([5]);
    expect(errors.map((e) => [e.line, e.path, e.message])).toEqual([
      [2, '(line)', 'invalid CSV: Invalid Record Length: expect 2, got 1'],
      [3, '(line)', 'invalid CSV: Invalid Record Length: expect 2, got 3'],
      [7, '(line)', 'invalid CSV: Invalid Record Length: expect 2, got 3'],
    ]);
  });

  it('makes broken quoting the last row error: the rows before it stand, the rest cannot be read', async () => {
    for (const [bad, message] of [
      [`${VIDEO},"${IMG[0]}"x`, /^invalid CSV: Invalid Closing Quote: got "x"; the rest/],
      [`${VIDEO},x"${IMG[0]}`, /^invalid CSV: Invalid Opening Quote: .*; the rest/],
      [`${VIDEO},"${IMG[0]}`, /^invalid CSV: a quoted cell opened on this line is never closed; the rest/],
    ] as const) {
      // Line 3 is bad on its own (no image), line 4 breaks the quoting, line 5 is never read.
      const text = csv('video,images', `${VIDEO},${IMG[0]}`, `${VIDEO},`, bad, `${VIDEO},${IMG[0]}`);
      const { rows, errors } = await collect(text, { format: 'csv' });
      expect(
        rows.map((r) => r.line),
        bad,
      ).toEqual([2]);
      expect(errors.map((e) => [e.line, e.path])).toEqual([
        [3, 'images'],
        [4, '(line)'],
      ]);
      expect(errors[1]?.message).toMatch(message);
      expect(errors[1]?.message).toContain('the rest of the file after line 4 could not be read');
    }
  });

  it('refuses invalid UTF-8 naming its column, also when a character is split across chunks', async () => {
    const prompt = Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from(' au lait')]);
    const text = Buffer.concat([
      Buffer.from(`custom_id,video,images,instruction_prompt\nbad,${VIDEO},${IMG[0]},`),
      prompt,
      Buffer.from(`\ngood,${VIDEO},${IMG[0]},Zoë 🎬\n`),
    ]);
    async function* bytes(size: number) {
      for (let at = 0; at < text.length; at += size) yield text.subarray(at, at + size);
    }
    for (const size of [1, 2, 3, 64 * 1024]) {
      const { rows, errors } = await collect(bytes(size), { format: 'csv' });
      expect(
        errors.map((e) => [e.line, e.custom_id, e.path, e.message]),
        `chunks of ${size}`,
      ).toEqual([[2, 'bad', 'instruction_prompt', 'invalid UTF-8']]);
      expect(rows.map((r) => r.request.instruction_prompt)).toEqual(['Zoë 🎬']);
    }
  });

  it('says what an empty images or video cell means in CSV terms, unless a default fills it', async () => {
    const text = csv('custom_id,video,images', `a,${VIDEO},`, `b,,${IMG[0]}`, `c,${VIDEO}, | `);
    const { errors } = await collect(text, { format: 'csv' });
    expect(errors.map((e) => [e.custom_id, e.path, e.message])).toEqual([
      [
        'a',
        'images',
        'no image: the images cell is empty (give 1-4 image URLs separated by |, or images_1..images_4 columns)',
      ],
      ['b', 'video', 'the video cell is empty: give the source video URL'],
      ['c', 'images', 'must hold at least 1 image'],
    ]);
    const defaulted = await collect(csv('custom_id,video,images', `a,${VIDEO},`), {
      format: 'csv',
      defaults: { images: [IMG[0]] },
    });
    expect(defaulted.errors).toEqual([]);
  });

  it('refuses a __proto__ key in a JSON cell, naming its path, and reads target_fps 24 as "24"', async () => {
    const text = csv(
      'custom_id,video,images,metadata,target_fps',
      `p,${VIDEO},${IMG[0]},"{""__proto__"":{""admin"":true}}",`,
      `f,${VIDEO},${IMG[0]},,24`,
    );
    const { rows, errors } = await collect(text, { format: 'csv' });
    expect(errors.map((e) => [e.line, e.custom_id, e.path, e.message])).toEqual([
      [2, 'p', 'metadata.__proto__', 'reserved key'],
    ]);
    expect(rows[0]?.request.target_fps).toBe('24');
  });

  it('treats a row of empty cells as blank', async () => {
    const { rows } = await collect(csv('video,images', ',', `${VIDEO},${IMG[0]}`), { format: 'csv' });
    expect(rows.map((r) => r.line)).toEqual([3]);
  });
});
