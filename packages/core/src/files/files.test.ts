import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { isAppError } from '../errors/app-error.js';
import { probeLocalVideo } from '../media/local-probe.js';
import { fixture } from '../testing/fixture-server.js';
import { parseByteRange } from './byte-range.js';
import { createOutputStore, LocalDirectoryStore } from './output-store.js';
import { compareDurations } from './retain.js';
import { sniffMedia } from './sniff.js';
import { spoolUpload, sweepStaleSpools } from './spool.js';

const scratch = mkdtempSync(join(tmpdir(), 'recast-files-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function codeOf(promise: Promise<unknown>): Promise<{ code: string; path?: string; status: number }> {
  try {
    await promise;
  } catch (error) {
    if (!isAppError(error)) throw error;
    return {
      code: error.code,
      status: error.statusCode,
      ...(error.issues?.[0] ? { path: error.issues[0].path } : {}),
    };
  }
  throw new Error('expected a refusal');
}

/** A source that yields `chunks`, then fails as a client that went away mid-upload does. */
async function* cutOff(chunks: Buffer[]): AsyncGenerator<Buffer> {
  for (const chunk of chunks) yield chunk;
  throw new Error('aborted');
}

describe('sniffMedia', () => {
  it('tells the accepted formats from their bytes, not their names', async () => {
    const cases: [string, string | undefined][] = [
      ['clip-2s-faststart.mp4', 'video/mp4'],
      ['clip-3s.mov', 'video/quicktime'],
      ['person-a.png', 'image/png'],
      ['person-b.jpg', 'image/jpeg'],
      ['person-c.webp', 'image/webp'],
      ['not-a-video.mp4', undefined],
    ];
    for (const [name, type] of cases)
      expect([name, sniffMedia(await fixture(name))?.contentType]).toEqual([name, type]);
    // HEIF stills use ftyp too: not a video.
    const heic = Buffer.from('000000186674797068656963000000006d696631', 'hex');
    expect(sniffMedia(heic)).toBeUndefined();
  });
});

const dir = () => mkdtempSync(join(scratch, 'spool-'));

describe('spoolUpload', () => {
  it('writes the bytes to a temp file with their hash, size and (for a video) duration', async () => {
    const d = dir();
    const bytes = await fixture('clip-5s-moov-at-end.mp4');
    const file = await spoolUpload(Readable.from([bytes.subarray(0, 7), bytes.subarray(7)]), {
      dir: d,
      field: 'video',
      maxBytes: 1 << 20,
      accept: ['video'],
      probeVideo: true,
      filename: 'my clip.MP4',
    });
    expect(file).toMatchObject({ size: bytes.length, kind: 'video', contentType: 'video/mp4', seconds: 5 });
    expect(file.filename).toBe('my_clip.mp4');
    expect((await readFile(file.path)).equals(bytes)).toBe(true);
    expect(file.sha256).toMatch(/^[0-9a-f]{64}$/);
    await file.remove();
    expect(readdirSync(d)).toEqual([]);
  });

  it('refuses a wrong type, an oversize file, an unreadable video and a cut-off upload, leaving no file', async () => {
    const d = dir();
    const png = await fixture('person-a.png');
    const mp4 = await fixture('clip-2s-faststart.mp4');
    const opts = { dir: d, maxBytes: 4096, probeVideo: true } as const;
    expect(
      await codeOf(spoolUpload(Readable.from([png]), { ...opts, field: 'video', accept: ['video'] })),
    ).toEqual({
      code: 'FILE_TYPE_UNSUPPORTED',
      status: 415,
      path: 'video',
    });
    expect(
      await codeOf(spoolUpload(Readable.from([mp4]), { ...opts, field: 'video', accept: ['video'] })),
    ).toEqual({
      code: 'FILE_TOO_LARGE',
      status: 413,
      path: 'video',
    });
    expect(
      await codeOf(
        spoolUpload(Readable.from([await fixture('truncated.mp4')]), {
          ...opts,
          maxBytes: 1 << 20,
          field: 'video',
          accept: ['video'],
        }),
      ),
    ).toMatchObject({ code: 'FILE_UNREADABLE', path: 'video' });
    expect(
      await codeOf(
        spoolUpload(cutOff([png.subarray(0, 100)]), { ...opts, field: 'images[2]', accept: ['image'] }),
      ),
    ).toEqual({ code: 'UPLOAD_INCOMPLETE', status: 400, path: 'images[2]' });
    expect(
      await codeOf(spoolUpload(Readable.from([]), { ...opts, field: 'images[0]', accept: ['image'] })),
    ).toMatchObject({
      code: 'VALIDATION_FAILED',
      path: 'images[0]',
    });
    expect(readdirSync(d)).toEqual([]);
  });

  it('refuses a wrong type from its first bytes, without reading the rest', async () => {
    let pulled = 0;
    const endless = async function* () {
      for (;;) {
        pulled++;
        yield Buffer.alloc(64 * 1024, 0x41);
      }
    };
    const d = dir();
    expect(
      await codeOf(spoolUpload(endless(), { dir: d, field: 'video', maxBytes: 1 << 30, accept: ['video'] })),
    ).toMatchObject({
      code: 'FILE_TYPE_UNSUPPORTED',
    });
    expect(pulled).toBe(1);
    expect(readdirSync(d)).toEqual([]);
  });
});

describe('sweepStaleSpools', () => {
  it('removes only upload temp files older than the cutoff', async () => {
    const d = dir();
    const file = await spoolUpload(Readable.from([await fixture('person-a.png')]), {
      dir: d,
      field: 'images[0]',
      maxBytes: 4096,
      accept: ['image'],
    });
    writeFileSync(join(d, 'someone-else.txt'), 'x');
    expect(await sweepStaleSpools(d, 60_000)).toBe(0);
    expect(await sweepStaleSpools(d, 60_000, Date.now() + 120_000)).toBe(1);
    expect(readdirSync(d)).toEqual(['someone-else.txt']);
    await file.remove();
  });
});

describe('probeLocalVideo', () => {
  it('reads the video track duration of files on disk, moov first or last, fragmented or not', async () => {
    const d = await mkdtemp(join(scratch, 'probe-'));
    for (const [name, seconds] of [
      ['clip-2s-faststart.mp4', 2],
      ['clip-5s-moov-at-end.mp4', 5],
      ['clip-3s.mov', 3],
      ['clip-7.5s-audio.mp4', 7.52],
      // Fragmented: mehd, else the mfra index, else every moof (test-fixtures/make-fragmented.mjs).
      ['frag-4.2s-mehd-mfra.mp4', 4.2],
      ['frag-4.2s-mehd.mp4', 4.2],
      ['frag-4.2s-mfra.mp4', 4.2],
      ['frag-4.2s.mp4', 4.2],
    ] as const) {
      const file = await spoolUpload(Readable.from([await fixture(name)]), {
        dir: d,
        field: 'video',
        maxBytes: 1 << 20,
        accept: ['video'],
      });
      expect([name, await probeLocalVideo(file.path)]).toEqual([name, seconds]);
      await file.remove();
    }
  });
});

describe('parseByteRange', () => {
  it('reads single ranges, suffixes and open ends; refuses ranges past the end; ignores the rest', () => {
    expect(parseByteRange('bytes=0-99', 1000)).toEqual({ start: 0, end: 99 });
    expect(parseByteRange('bytes=900-', 1000)).toEqual({ start: 900, end: 999 });
    expect(parseByteRange('bytes=-10', 1000)).toEqual({ start: 990, end: 999 });
    expect(parseByteRange('bytes=-5000', 1000)).toEqual({ start: 0, end: 999 });
    expect(parseByteRange('bytes=10-5000', 1000)).toEqual({ start: 10, end: 999 });
    expect(parseByteRange('bytes=1000-', 1000)).toBe('unsatisfiable');
    expect(parseByteRange('bytes=-0', 1000)).toBe('unsatisfiable');
    for (const ignored of [undefined, 'bytes=0-1,5-6', 'items=0-1', 'bytes=5-1', 'bytes=-']) {
      expect(parseByteRange(ignored, 1000)).toBeUndefined();
    }
  });
});

describe('output store (local directory)', () => {
  it('stores whole files under their key, reads ranges, and refuses unsupported store URLs', async () => {
    const d = mkdtempSync(join(scratch, 'store-'));
    const store = createOutputStore(`file://${d}`);
    expect(store).toBeInstanceOf(LocalDirectoryStore);
    const bytes = await fixture('clip-2s-faststart.mp4');
    expect(await store.put('job_1.mp4', Readable.from([bytes]), { contentType: 'video/mp4' })).toEqual({
      size: bytes.length,
    });
    expect(await store.stat('job_1.mp4')).toEqual({ size: bytes.length });
    expect(await store.stat('job_2.mp4')).toBeUndefined();
    const chunks: Buffer[] = [];
    for await (const c of await store.read('job_1.mp4', { start: 10, end: 19 })) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(bytes.subarray(10, 20))).toBe(true);
    expect(readdirSync(d)).toEqual(['job_1.mp4']);
    await expect(
      store.put('../escape', Readable.from([bytes]), { contentType: 'video/mp4' }),
    ).rejects.toThrow(/invalid output store key/);
    expect(() => createOutputStore('s3://bucket/outputs')).toThrow(/not supported/);
  });
});

describe('compareDurations', () => {
  it('flags a difference beyond the tolerance, in whole milliseconds', () => {
    expect(compareDurations(2, 2.25, 0.25).mismatch).toBe(false);
    expect(compareDurations(2, 2.251, 0.25).mismatch).toBe(true);
    expect(compareDurations(2, 3, 0.25)).toEqual({
      probed_seconds: 2,
      billed_seconds: 3,
      tolerance_seconds: 0.25,
      mismatch: true,
    });
  });
});
