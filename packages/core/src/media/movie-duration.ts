import { createFile, type Movie, MP4BoxBuffer } from 'mp4box';
import type { Logger } from '../infra/logger.js';
import type { MovieBoxes } from './box-walk.js';
import { ProbeError } from './probe-error.js';

/** mp4box wants an `ftyp` before `moov`; old QuickTime files may have none, so lend it one. */
const QUICKTIME_FTYP = Buffer.concat([
  Buffer.from([0, 0, 0, 20]),
  Buffer.from('ftypqt  ', 'latin1'),
  Buffer.from([0, 0, 0, 0]),
  Buffer.from('qt  ', 'latin1'),
]);

/**
 * The presented duration of the first video track, in seconds: tkhd (which honours the edit
 * list), else the media duration, else the movie's. The movie duration alone can be longer than
 * the picture (AAC priming on the audio track).
 */
export function videoDuration(boxes: MovieBoxes, logger?: Logger): number {
  const movie = parseMovie(Buffer.concat([boxes.ftyp ?? QUICKTIME_FTYP, boxes.moov]), logger);
  if (!movie) throw new ProbeError('not_mp4', 'mp4box could not read the moov box');
  const track = movie.videoTracks[0];
  if (!track) throw new ProbeError('no_video_track', 'the file has no video track');
  const seconds = trackSeconds(track, movie);
  if (!(seconds > 0)) throw new ProbeError('no_video_track', 'the video track has no duration');
  return Math.round(seconds * 1000) / 1000;
}

function trackSeconds(track: Movie['tracks'][number], movie: Movie): number {
  const movieTimescale = track.movie_timescale || movie.timescale;
  if (track.movie_duration > 0 && movieTimescale > 0) return track.movie_duration / movieTimescale;
  if (track.duration > 0 && track.timescale > 0) return track.duration / track.timescale;
  if (movie.duration > 0 && movie.timescale > 0) return movie.duration / movie.timescale;
  return 0;
}

function parseMovie(bytes: Buffer, logger: Logger | undefined): Movie | undefined {
  const file = createFile();
  let movie: Movie | undefined;
  file.onReady = (info) => {
    movie = info;
  };
  file.onError = (module, message) => {
    logger?.debug({ module, message }, 'mp4box reported a problem');
  };
  const copy = new Uint8Array(bytes).buffer;
  withLibraryConsole(logger, () => {
    try {
      file.appendBuffer(MP4BoxBuffer.fromArrayBuffer(copy, 0), true);
      file.flush();
    } catch (error) {
      logger?.debug({ err: error }, 'mp4box threw');
    }
  });
  return movie;
}

/**
 * mp4box prints some complaints (unknown QuickTime metadata boxes, e.g. in clip-3s.mov) straight
 * to the console with no way to turn them off. Parsing is synchronous, so borrowing the console
 * for its duration routes them to our logger without affecting anything else.
 */
function withLibraryConsole(logger: Logger | undefined, fn: () => void): void {
  const target = console;
  const saved = { error: target.error, warn: target.warn, info: target.info, debug: target.debug };
  const sink = (...args: unknown[]) => logger?.debug({ mp4box: args.map(String).join(' ') }, 'mp4box');
  Object.assign(target, { error: sink, warn: sink, info: sink, debug: sink });
  try {
    fn();
  } finally {
    Object.assign(target, saved);
  }
}
