import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LookupFn } from '../net/ssrf.js';
import { type FixtureServer, fixture, startFixtureServer } from '../testing/fixture-server.js';
import { ProbeError, type ProbeOptions, probeVideoDuration } from './probe.js';

const MOOV_AT_END = { file: 'clip-5s-moov-at-end.mp4', mdatPayload: [48, 15_747] as const };

let server: FixtureServer;
let lazyServer: FixtureServer;
let options: ProbeOptions;

/** clip-5s-moov-at-end.mp4 with `free`+`mdat` headers rewritten as one 64-bit `mdat` header. */
async function largesizeVariant(): Promise<Buffer> {
  const bytes = Buffer.from(await fixture(MOOV_AT_END.file));
  expect(bytes.toString('latin1', 36, 40)).toBe('free');
  bytes.writeUInt32BE(1, 32);
  bytes.write('mdat', 36, 'latin1');
  bytes.writeBigUInt64BE(BigInt(15_747 - 32), 40);
  return bytes;
}

/** clip-5s-moov-at-end.mp4 with 1 MiB of `free` before its mdat: more than one chunk of body. */
async function paddedVariant(): Promise<Buffer> {
  const bytes = await fixture(MOOV_AT_END.file);
  const free = Buffer.alloc(1024 * 1024);
  free.writeUInt32BE(free.length, 0);
  free.write('free', 4, 'latin1');
  return Buffer.concat([bytes.subarray(0, 32), free, bytes.subarray(32)]);
}

/** clip-2s-faststart.mp4 without its video `trak` (moov size patched; sample offsets go stale). */
async function audioOnlyVariant(): Promise<Buffer> {
  const bytes = await fixture('clip-2s-faststart.mp4');
  const moovStart = 32;
  const children: Buffer[] = [];
  for (let offset = moovStart + 8; offset < moovStart + bytes.readUInt32BE(moovStart); ) {
    const box = bytes.subarray(offset, offset + bytes.readUInt32BE(offset));
    const hdlr = box.indexOf('hdlr');
    const isVideo =
      box.toString('latin1', 4, 8) === 'trak' && box.toString('latin1', hdlr + 12, hdlr + 16) === 'vide';
    if (!isVideo) children.push(box);
    offset += box.length;
  }
  const moovHeader = Buffer.from([0, 0, 0, 0, ...Buffer.from('moov', 'latin1')]);
  const moov = Buffer.concat([moovHeader, ...children]);
  moov.writeUInt32BE(moov.length, 0);
  expect(moov.length).toBeLessThan(bytes.readUInt32BE(moovStart));
  return Buffer.concat([
    bytes.subarray(0, moovStart),
    moov,
    bytes.subarray(moovStart + bytes.readUInt32BE(moovStart)),
  ]);
}

beforeAll(async () => {
  const files = {
    'largesize.mp4': await largesizeVariant(),
    'padded.mp4': await paddedVariant(),
    'audio-only.mp4': await audioOnlyVariant(),
  };
  server = await startFixtureServer({ files });
  lazyServer = await startFixtureServer({ ignoreRange: true, files });
  options = {
    policy: { allowHosts: [server.host, lazyServer.host] },
    timeoutMs: 5_000,
    maxMoovBytes: 8 * 1024 * 1024,
    maxRequests: 8,
  };
});

afterAll(async () => {
  await server.close();
  await lazyServer.close();
});

async function probeFailure(url: string, overrides: Partial<ProbeOptions> = {}): Promise<ProbeError> {
  const error = await probeVideoDuration(url, { ...options, ...overrides }).then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(ProbeError);
  return error as ProbeError;
}

/** Bytes the server sent from inside [start, end) of `file`, since its `served` had `since` entries. */
function servedWithin(file: string, [start, end]: readonly [number, number], since: number): number {
  return server.stats.served
    .slice(since)
    .filter((served) => served.file === file)
    .reduce((sum, served) => sum + Math.max(0, Math.min(end, served.end) - Math.max(start, served.start)), 0);
}

describe('probeVideoDuration over Range requests', () => {
  it.each([
    ['clip-2s-faststart.mp4', 2, 2],
    ['clip-5s-moov-at-end.mp4', 5, 3],
    // The emulator measures 7.52 too: 188 frames at 25 fps in tkhd, whatever the table says.
    ['clip-7.5s-audio.mp4', 7.52, 2],
    ['clip-3s.mov', 3, 3],
    ['largesize.mp4', 5, 3],
    // ftyp, then 1 MiB of free, then free + mdat, then moov: one header read per jump.
    ['padded.mp4', 5, 4],
  ])('reads the video track of %s: %s s in %s requests', async (file, seconds, requests) => {
    expect(await probeVideoDuration(server.url(file), options)).toMatchObject({ seconds, requests });
  });

  // Fragmented (moov durations 0, samples in moof/trun): made by test-fixtures/make-fragmented.mjs.
  it.each([
    // mehd in the moov: nothing past the moov is read.
    ['frag-4.2s-mehd-mfra.mp4', 2],
    ['frag-4.2s-mehd.mp4', 2],
    // No mehd: the mfra index at the end, then the first and the last fragment.
    ['frag-4.2s-mfra.mp4', 5],
    // Neither: the tail (no mfro there), then one request per fragment (5).
    ['frag-4.2s.mp4', 8],
  ])('reads the fragmented %s: 4.2 s in %s requests', async (file, requests) => {
    expect(await probeVideoDuration(server.url(file), options)).toMatchObject({ seconds: 4.2, requests });
  });

  it('reads no fragment between the first and the last when the file has an mfra index', async () => {
    const file = 'frag-4.2s-mfra.mp4';
    const size = (await fixture(file)).length;
    const since = server.stats.served.length;
    await probeVideoDuration(server.url(file), options);
    // From the second moof (at 9,776) to the 4 KiB tail read for mfro: never asked for.
    expect(servedWithin(file, [9776, size - 4096], since)).toBe(0);
  });

  it('gives up on a fragmented file whose fragment headers pass maxMoovBytes', async () => {
    const error = await probeFailure(server.url('frag-4.2s.mp4'), { maxMoovBytes: 4096 + 1300 });
    expect(error.reason).toBe('too_large');
    expect(error.message).toMatch(/fragment headers/);
  });

  it('keeps mp4box complaints off the console', async () => {
    // clip-3s.mov carries QuickTime metadata boxes mp4box does not know and prints about.
    const spies = (['error', 'warn', 'info', 'debug', 'log'] as const).map((method) =>
      vi.spyOn(console, method).mockImplementation(() => {}),
    );
    try {
      await probeVideoDuration(server.url('clip-3s.mov'), options);
      for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });

  it('reads only ftyp and moov of a faststart file', async () => {
    const file = 'clip-2s-faststart.mp4';
    const size = (await fixture(file)).length;
    const since = server.stats.served.length;
    const result = await probeVideoDuration(server.url(file), options);
    // ftyp (32) + moov (2,463): mdat starts at 2,503 and is never asked for.
    expect(result).toEqual({ seconds: 2, bytesRead: 32 + 2463, requests: 2 });
    expect(result.bytesRead).toBeLessThan(size / 3);
    expect(servedWithin(file, [2495, size], since)).toBe(0);
  });

  it.each([
    MOOV_AT_END,
    { file: 'padded.mp4', mdatPayload: [48 + 1024 * 1024, 15_747 + 1024 * 1024] as const },
  ])('jumps over the mdat of $file to the moov at its end', async ({ file, mdatPayload }) => {
    const since = server.stats.served.length;
    const result = await probeVideoDuration(server.url(file), options);
    expect(result.seconds).toBe(5);
    // Only the tail of the first 64-byte header read falls into the media data.
    expect(servedWithin(file, mdatPayload, since)).toBeLessThanOrEqual(64);
    expect(result.bytesRead).toBeLessThan(3000);
  });

  it('asks for the rest when a server sends less than the range asked for', async () => {
    const capped = await startFixtureServer({ maxRangeBytes: 1000 });
    try {
      const result = await probeVideoDuration(capped.url('clip-7.5s-audio.mp4'), {
        ...options,
        policy: { allowHosts: [capped.host] },
      });
      // 64-byte window, then the 5,383-byte moov in six 1,000-byte pieces.
      expect(result).toMatchObject({ seconds: 7.52, requests: 7 });
    } finally {
      await capped.close();
    }
  });

  it('refuses a moov box larger than maxMoovBytes', async () => {
    const error = await probeFailure(server.url('clip-7.5s-audio.mp4'), { maxMoovBytes: 4096 });
    expect(error.reason).toBe('too_large');
    expect(error.message).toMatch(/moov box is 5383 bytes/);
  });

  it('stops after maxRequests', async () => {
    const error = await probeFailure(server.url(MOOV_AT_END.file), { maxRequests: 2 });
    expect(error.reason).toBe('too_large');
    expect(error.message).toMatch(/more than 2 HTTP requests/);
  });
});

describe('probeVideoDuration against a server that ignores Range', () => {
  it.each([
    ['clip-2s-faststart.mp4', 2],
    [MOOV_AT_END.file, 5],
    ['clip-3s.mov', 3],
  ])('reads %s from one streamed answer: %s s', async (file, seconds) => {
    const before = lazyServer.stats.requests;
    const result = await probeVideoDuration(lazyServer.url(file), options);
    expect(result.seconds).toBe(seconds);
    expect(result.requests).toBe(1);
    expect(lazyServer.stats.requests - before).toBe(1);
  });

  it.each(['frag-4.2s-mfra.mp4', 'frag-4.2s.mp4'])('reads the fragmented %s: 4.2 s', async (file) => {
    expect(await probeVideoDuration(lazyServer.url(file), options)).toMatchObject({ seconds: 4.2 });
  });

  it('gives up once maxMoovBytes have streamed by without a moov', async () => {
    const error = await probeFailure(lazyServer.url('padded.mp4'), { maxMoovBytes: 256 * 1024 });
    expect(error.reason).toBe('too_large');
    expect(error.message).toMatch(/ignores Range/);
  });
});

describe('probeVideoDuration failures', () => {
  it.each([
    ['not-a-video.mp4', /not an MP4\/MOV file: it starts with 6e 6f 74 20/],
    ['person-a.png', /not an MP4\/MOV file: it starts with 89 50 4e 47/],
    ['truncated.mp4', /no moov box/],
  ])('%s is not an MP4', async (file, message) => {
    const error = await probeFailure(server.url(file));
    expect(error.reason).toBe('not_mp4');
    expect(error.message).toMatch(message);
  });

  it('a file without a video track', async () => {
    const error = await probeFailure(server.url('audio-only.mp4'));
    expect(error.reason).toBe('no_video_track');
  });

  it('HTTP 404', async () => {
    const error = await probeFailure(server.url('missing.mp4'));
    expect(error.reason).toBe('http');
    expect(error.message).toMatch(/HTTP 404/);
  });

  it('a server that never answers', async () => {
    const error = await probeFailure(server.hang, { timeoutMs: 200 });
    expect(error.reason).toBe('timeout');
    expect(error.message).toMatch(/within 200 ms/);
  });

  it('a local server that is not allow-listed', async () => {
    const error = await probeFailure(server.url('clip-2s-faststart.mp4'), { policy: { allowHosts: [] } });
    expect(error.reason).toBe('refused');
    expect(error.message).toMatch(/127\.0\.0\.1 is a loopback address/);
  });
});

describe('probeVideoDuration redirects', () => {
  it('follows them, and reads further ranges at the final URL', async () => {
    const before = server.stats.requests;
    const result = await probeVideoDuration(server.redirect(server.url(MOOV_AT_END.file)), options);
    expect(result).toMatchObject({ seconds: 5, requests: 4 });
    expect(server.stats.requests - before).toBe(4);
  });

  it.each([
    ['an IP literal', 'http://10.0.0.1/video.mp4', /10\.0\.0\.1 is a private network address/],
    [
      'a metadata address',
      'http://169.254.169.254/latest',
      /169\.254\.169\.254 is the cloud metadata address/,
    ],
  ])('refuses one to %s', async (_, target, message) => {
    const error = await probeFailure(server.redirect(target));
    expect(error.reason).toBe('refused');
    expect(error.message).toMatch(/^redirected to http:\/\/.*, refused: /);
    expect(error.message).toMatch(message);
  });

  it('refuses one to a name that resolves to a private address', async () => {
    const lookup: LookupFn = async () => [{ address: '192.168.1.20', family: 4 }];
    const error = await probeFailure(server.redirect('http://nas.example.com/video.mp4'), { lookup });
    expect(error.reason).toBe('refused');
    expect(error.message).toMatch(/resolves to 192\.168\.1\.20, a private network address/);
  });

  it('gives up after 5', async () => {
    let url = server.url('clip-2s-faststart.mp4');
    for (let hop = 0; hop < 6; hop++) url = server.redirect(url);
    const error = await probeFailure(url, { maxRequests: 20 });
    expect(error.reason).toBe('http');
    expect(error.message).toMatch(/more than 5 redirects/);
  });
});
