import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ManifestTooLargeError } from './errors.js';
import { collect, hugeUpload, IMG, LIMITS, VIDEO } from './test-helpers.js';

const ROW = `${JSON.stringify({ video: VIDEO, images: IMG })}\n`;
const CSV_ROW = `${VIDEO},${IMG.join('|')}\n`;

describe('manifest limits', () => {
  it.each([
    ['jsonl', '', ROW],
    ['csv', 'video,images\n', CSV_ROW],
  ] as const)(
    'refuses a lazy 2 GB %s upload past maxBytes, having pulled only a little',
    async (format, head, line) => {
      const upload = hugeUpload(line, head);
      const limits = { ...LIMITS, maxBytes: 1024 * 1024, maxRows: 10_000_000 };
      const err = await collect(upload.source, { format, limits }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ManifestTooLargeError);
      expect(err).toMatchObject({
        code: 'PAYLOAD_TOO_LARGE',
        statusCode: 413,
        details: { limit: 'maxBytes', value: 1024 * 1024 },
        message: 'manifest exceeds 1048576 bytes (MANIFEST_MAX_BYTES)',
      });
      expect(upload.pulled()).toBe(Math.floor((limits.maxBytes - head.length) / upload.chunkBytes) + 1);
      expect(upload.closed()).toBe(true);
    },
  );

  it('destroys a Node stream it refuses', async () => {
    const upload = hugeUpload(ROW);
    const stream = Readable.from(upload.source, { objectMode: false });
    const limits = { ...LIMITS, maxBytes: 256 * 1024, maxRows: 10_000_000 };
    await expect(collect(stream, { format: 'jsonl', limits })).rejects.toBeInstanceOf(ManifestTooLargeError);
    expect(stream.destroyed).toBe(true);
    expect(upload.pulled()).toBeLessThan(10);
  });

  it.each([
    ['jsonl', '', ROW],
    ['csv', 'video,images\n', CSV_ROW],
  ] as const)(
    'refuses a %s manifest past maxRows (row errors count, blank lines do not)',
    async (format, head, row) => {
      const limits = { ...LIMITS, maxRows: 3 };
      const three = `${head}${row}\n${row}{}\n`.replace('{}\n', format === 'csv' ? ',nope\n' : '{}\n');
      await expect(collect(three, { format, limits })).resolves.toMatchObject({
        rows: [{}, {}],
        errors: [{}],
      });
      const upload = hugeUpload(row, head);
      const err = await collect(upload.source, { format, limits }).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'MANIFEST_TOO_MANY_ROWS',
        statusCode: 413,
        details: { limit: 'maxRows', value: 3 },
        message: 'manifest exceeds 3 rows (MANIFEST_MAX_ROWS)',
      });
      expect(upload.pulled()).toBe(1);
    },
  );

  it.each(['jsonl', 'csv'] as const)(
    'refuses an over-long %s line, even one that never ends',
    async (format) => {
      const limits = { ...LIMITS, maxLineBytes: 1024 };
      const head = format === 'csv' ? 'video,images\n' : '';
      const row = format === 'csv' ? CSV_ROW : ROW;
      const long = `${head}${row}${row.replace('clip', 'c'.repeat(1024))}`;
      await expect(collect(long, { format, limits })).rejects.toMatchObject({
        code: 'MANIFEST_LINE_TOO_LONG',
        statusCode: 413,
        issues: [{ path: '(line)', line: format === 'csv' ? 3 : 2 }],
        details: { limit: 'maxLineBytes', value: 1024, line: format === 'csv' ? 3 : 2 },
        message: `manifest line ${format === 'csv' ? 3 : 2} exceeds 1024 bytes (MANIFEST_MAX_LINE_BYTES)`,
      });
      const upload = hugeUpload('x'.repeat(100));
      await expect(collect(upload.source, { format, limits })).rejects.toMatchObject({
        details: { limit: 'maxLineBytes', line: 1 },
      });
      expect(upload.pulled()).toBe(1);
    },
  );

  it('bounds a CSV record spread over many short lines by maxLineBytes, naming its first line', async () => {
    const limits = { ...LIMITS, maxLineBytes: 1024 };
    const prompt = 'a short line\r\n'.repeat(200);
    const text = `video,images,instruction_prompt\n\n${VIDEO},${IMG[0]},"${prompt}"\n`;
    await expect(collect(text, { format: 'csv', limits })).rejects.toMatchObject({
      details: { limit: 'maxLineBytes', line: 3 },
    });
  });
});
