import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../errors/app-error.js';
import { createLogger } from '../infra/logger.js';
import { type FixtureServer, startFixtureServer } from '../testing/fixture-server.js';
import { createDurationEstimator, type DurationEstimatorOptions } from './estimate.js';

const FASTSTART = 'clip-2s-faststart.mp4';
/** Requests one probe of the faststart fixture makes: a header window, then the moov. */
const REQUESTS_PER_PROBE = 2;

let server: FixtureServer;
let slowServer: FixtureServer;
/** `127.0.0.1:<port>` with nothing listening. */
let closedHost: string;

beforeAll(async () => {
  server = await startFixtureServer();
  slowServer = await startFixtureServer({ delayMs: 25 });
  const closed = await startFixtureServer();
  closedHost = closed.host;
  await closed.close();
});

afterAll(async () => {
  await server.close();
  await slowServer.close();
});

async function withEstimator<T>(
  overrides: Partial<DurationEstimatorOptions>,
  fn: (estimator: ReturnType<typeof createDurationEstimator>) => Promise<T>,
): Promise<T> {
  const estimator = createDurationEstimator({
    policy: { allowHosts: [server.host, slowServer.host, closedHost] },
    fallbackSeconds: 60,
    concurrency: 4,
    timeoutMs: 5_000,
    ...overrides,
  });
  try {
    return await fn(estimator);
  } finally {
    await estimator.close();
  }
}

describe('createDurationEstimator', () => {
  it('takes the hint without fetching anything', async () => {
    const before = server.stats.requests;
    const estimate = await withEstimator({}, (estimator) =>
      estimator.estimate({ video: server.url(FASTSTART), duration_seconds: 12.5 }),
    );
    expect(estimate).toEqual({ seconds: 12.5, source: 'hint' });
    expect(server.stats.requests).toBe(before);
  });

  it('probes the video when there is no hint', async () => {
    const estimate = await withEstimator({}, (estimator) =>
      estimator.estimate({ video: server.url(FASTSTART) }),
    );
    expect(estimate).toEqual({ seconds: 2, source: 'probe' });
  });

  it.each([
    ['a server that never answers', () => server.hang, { timeoutMs: 200 }, /within 200 ms/],
    ['a 503', () => server.status(503), {}, /HTTP 503/],
    ['a 429', () => server.status(429), {}, /HTTP 429/],
    ['a refused connection', () => `http://${closedHost}/v.mp4`, {}, /ECONNREFUSED/],
  ])('falls back on %s (it may pass), saying why', async (_, video, overrides, reason) => {
    const estimate = await withEstimator(overrides, (estimator) => estimator.estimate({ video: video() }));
    expect(estimate).toMatchObject({ seconds: 60, source: 'fallback' });
    expect(estimate.probe_error).toMatch(reason);
  });

  it.each([
    ['a 404', () => server.url('missing.mp4'), /HTTP 404/],
    ['a 410', () => server.status(410), /HTTP 410/],
    ['a 403', () => server.status(403), /HTTP 403/],
    ['a PNG', () => server.url('person-a.png'), /not an MP4\/MOV file/],
    ['a text file', () => server.url('not-a-video.mp4'), /not an MP4\/MOV file/],
    ['a truncated header', () => server.url('truncated.mp4'), /no moov box/],
  ])('refuses %s with VIDEO_UNREADABLE 400 naming video: no one can read it', async (_, video, message) => {
    const error = await withEstimator({}, (estimator) => estimator.estimate({ video: video() })).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'VIDEO_UNREADABLE', statusCode: 400, issues: [{ path: 'video' }] });
    expect((error as AppError).issues?.[0]?.message).toMatch(message);
  });

  it('logs a fallback without the query string of a signed URL', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ level: 'warn', destination });
    await withEstimator({ logger }, (estimator) =>
      estimator.estimate({ video: `${server.status(503)}?X-Amz-Signature=s3cr3t` }),
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('/status/503');
    expect(lines[0]).not.toContain('s3cr3t');
  });

  it.each([
    [
      'a private address',
      () => 'http://10.0.0.1/video.mp4',
      false,
      /10\.0\.0\.1 is a private network address/,
    ],
    [
      'a local server not allow-listed',
      () => server.url(FASTSTART),
      false,
      /127\.0\.0\.1 is a loopback address/,
    ],
    [
      'an allowed server redirecting to a private address',
      () => server.redirect('http://192.168.0.1/v.mp4'),
      true,
      /redirected to http:\/\/192\.168\.0\.1\/v\.mp4, refused: 192\.168\.0\.1 is a private network address/,
    ],
  ])('answers a refused URL (%s) with URL_REFUSED 400', async (_, video, allowServer, message) => {
    const policy = { allowHosts: allowServer ? [server.host] : [] };
    const error = await withEstimator({ policy }, (estimator) => estimator.estimate({ video: video() })).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'URL_REFUSED', statusCode: 400, issues: [{ path: 'video' }] });
    expect((error as AppError).message).toMatch(message);
  });

  it('probes a video shared by many rows once, concurrent asks included', async () => {
    const video = server.url(FASTSTART);
    const before = server.stats.requests;
    await withEstimator({}, async (estimator) => {
      const estimates = await Promise.all(Array.from({ length: 500 }, () => estimator.estimate({ video })));
      expect(new Set(estimates.map((estimate) => JSON.stringify(estimate)))).toEqual(
        new Set([JSON.stringify({ seconds: 2, source: 'probe' })]),
      );
      expect(await estimator.estimate({ video })).toEqual({ seconds: 2, source: 'probe' });
    });
    expect(server.stats.requests - before).toBe(REQUESTS_PER_PROBE);
  });

  it('runs at most `concurrency` probes at once', async () => {
    const videos = Array.from({ length: 8 }, (_, n) => `${slowServer.url(FASTSTART)}?row=${n}`);
    await withEstimator({ concurrency: 3 }, (estimator) =>
      Promise.all(videos.map((video) => estimator.estimate({ video }))),
    );
    expect(slowServer.stats.requests).toBe(videos.length * REQUESTS_PER_PROBE);
    // Each probe's requests are sequential, so requests in flight = probes in flight.
    expect(slowServer.stats.maxInFlight).toBe(3);
  });

  it('forgets the least recently used URL past cacheSize, and any past cacheTtlMs', async () => {
    const [a, b] = [`${server.url(FASTSTART)}?a`, `${server.url(FASTSTART)}?b`];
    const probesFor = async (overrides: Partial<DurationEstimatorOptions>, videos: string[]) => {
      const before = server.stats.requests;
      await withEstimator(overrides, async (estimator) => {
        for (const video of videos) await estimator.estimate({ video });
      });
      return (server.stats.requests - before) / REQUESTS_PER_PROBE;
    };
    expect(await probesFor({ cacheSize: 2 }, [a, b, a, b])).toBe(2);
    expect(await probesFor({ cacheSize: 1 }, [a, b, a])).toBe(3);
    expect(await probesFor({ cacheTtlMs: 0 }, [a, a])).toBe(2);
  });
});
