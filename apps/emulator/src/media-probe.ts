import { createFile, type Movie, MP4BoxBuffer } from 'mp4box';
import type { Logger } from 'pino';

export interface SourceVideo {
  bytes: Buffer;
  contentType: string;
  /** Presented duration of the first video track, seconds. */
  seconds: number;
  /** Frames per second of that track, two decimals; null when it cannot be told. */
  fps: number | null;
}

export class SourceVideoError extends Error {
  override readonly name = 'SourceVideoError';
}

export interface FetchLimits {
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal;
}

/** Downloads a source video the way the app does: one GET, bounded in time and size. */
export function downloadVideo(
  url: string,
  limits: FetchLimits,
): Promise<{ bytes: Buffer; contentType: string }> {
  return download(url, limits, 'video');
}

/**
 * Downloads a reference image and checks it is one (JPEG, PNG, WebP or GIF, by its first bytes):
 * the app loads every reference before it runs, so an unreachable or non-image one fails the task.
 */
export async function downloadImage(url: string, limits: FetchLimits): Promise<void> {
  const { bytes } = await download(url, limits, 'image');
  if (!isImage(bytes)) {
    throw new SourceVideoError(
      `${url} is not an image (it starts with ${bytes.subarray(0, 8).toString('hex')})`,
    );
  }
}

export function isImage(bytes: Buffer): boolean {
  const ascii = (start: number, end: number) => bytes.toString('latin1', start, end);
  return (
    (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) ||
    bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) ||
    (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') ||
    ascii(0, 6) === 'GIF87a' ||
    ascii(0, 6) === 'GIF89a'
  );
}

async function download(
  url: string,
  limits: FetchLimits,
  what: 'video' | 'image',
): Promise<{ bytes: Buffer; contentType: string }> {
  const signals = [AbortSignal.timeout(limits.timeoutMs)];
  if (limits.signal) signals.push(limits.signal);
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.any(signals), redirect: 'follow' });
  } catch (error) {
    throw new SourceVideoError(`could not download ${url}: ${describe(error)}`);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new SourceVideoError(`could not download ${url}: HTTP ${response.status}`);
  }
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > limits.maxBytes) {
    await response.body.cancel();
    throw new SourceVideoError(`${what} is larger than ${limits.maxBytes} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body) {
      total += chunk.byteLength;
      if (total > limits.maxBytes)
        throw new SourceVideoError(`${what} is larger than ${limits.maxBytes} bytes`);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof SourceVideoError) throw error;
    throw new SourceVideoError(`could not download ${url}: ${describe(error)}`);
  }
  const contentType = response.headers.get('content-type') ?? 'video/mp4';
  return { bytes: Buffer.concat(chunks), contentType };
}

/**
 * Reads the duration from the MP4/MOV header. The VIDEO track's presented duration (tkhd, which
 * honours the edit list) is what the app bills, not the movie duration: an audio track with AAC
 * priming can make the movie longer than the picture. A fragmented file (MediaRecorder, OBS,
 * CMAF: a moov whose durations are 0, samples described in moof/trun) is measured by its video
 * track's samples: the emulator holds the whole file, so mp4box reads every fragment, which is
 * what the provider's own measurement of the output sees.
 */
export function probeVideo(bytes: Buffer, logger: Logger): { seconds: number; fps: number | null } {
  const movie = parseMovie(bytes, logger);
  if (!movie) throw new SourceVideoError('no readable MP4/MOV header (moov) found');
  const track = movie.videoTracks[0];
  if (!track) throw new SourceVideoError('the file has no video track');
  const mediaSeconds = track.timescale > 0 ? track.samples_duration / track.timescale : 0;
  // A fragmented file's tkhd covers at most the samples in its moov, often none.
  const seconds = movie.isFragmented
    ? Math.max(trackSeconds(track, movie), mediaSeconds)
    : trackSeconds(track, movie);
  if (!(seconds > 0)) throw new SourceVideoError('the video track has no duration');
  const fps = mediaSeconds > 0 ? Math.round((track.nb_samples / mediaSeconds) * 100) / 100 : null;
  return { seconds, fps };
}

function trackSeconds(track: Movie['tracks'][number], movie: Movie): number {
  const movieTimescale = track.movie_timescale || movie.timescale;
  if (track.movie_duration > 0 && movieTimescale > 0) return track.movie_duration / movieTimescale;
  if (track.duration > 0 && track.timescale > 0) return track.duration / track.timescale;
  if (movie.duration > 0 && movie.timescale > 0) return movie.duration / movie.timescale;
  return 0;
}

function parseMovie(bytes: Buffer, logger: Logger): Movie | undefined {
  const file = createFile();
  let movie: Movie | undefined;
  let failure: string | undefined;
  file.onReady = (info) => {
    movie = info;
  };
  file.onError = (module, message) => {
    failure = `${module}: ${message}`;
  };
  const buffer = MP4BoxBuffer.fromArrayBuffer(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    0,
  );
  withLibraryConsole(logger, () => {
    try {
      file.appendBuffer(buffer, true);
      file.flush();
    } catch (error) {
      failure = describe(error);
    }
  });
  if (failure) logger.debug({ failure }, 'mp4box reported a problem');
  return movie;
}

/**
 * mp4box prints parse complaints (e.g. unknown QuickTime metadata boxes) straight to the console,
 * with no way to turn them off. Parsing is synchronous, so borrowing the console for its duration
 * routes them to our logger without affecting anything else.
 */
function withLibraryConsole(logger: Logger, fn: () => void): void {
  // Borrowed only to reroute mp4box's output to pino; nothing here prints.
  const target = console;
  const saved = { error: target.error, warn: target.warn, info: target.info, debug: target.debug };
  const sink = (...args: unknown[]) => logger.debug({ mp4box: args.map(String).join(' ') }, 'mp4box');
  Object.assign(target, { error: sink, warn: sink, info: sink, debug: sink });
  try {
    fn();
  } finally {
    Object.assign(target, saved);
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}
